//! `tiersync demo` in a build without the `demo` feature (`--no-default-features`, the build a
//! merchant installs): the fake servers and the vendored Shopify and Klaviyo contracts are not
//! in this binary, so the command says so and how to get a build that has them.

use super::DemoOptions;

/// Refuses, naming the build that has the demo.
pub async fn run(_options: DemoOptions) -> anyhow::Result<()> {
    anyhow::bail!(
        "this tiersync was built without the demo (the production build: no fake servers, no \
         vendored API contracts). Run the demo from a clone of the repository with \
         `cargo run --release -- demo`, or install a build that has it with \
         `cargo install --path . --locked` (the `demo` feature is on by default)"
    )
}
