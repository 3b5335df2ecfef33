//! Showing [`Progress`]: bars (indicatif) when stderr is a terminal, otherwise one `progress`
//! log line per running phase at most every `log.progress_interval`, with the counts as
//! fields, for journald and log files.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Phase, PhaseProgress, Progress};

/// How often the bars are redrawn.
const BAR_TICK: Duration = Duration::from_millis(200);

/// Shows progress until dropped (then the bars show their last counts and stop).
pub struct Renderer {
    task: tokio::task::JoinHandle<()>,
    bars: Option<Arc<Mutex<Bars>>>,
    progress: Arc<Progress>,
}

/// Bars on a terminal, log lines every `interval` elsewhere. Needs a tokio runtime.
pub fn spawn(progress: Arc<Progress>, interval: Duration) -> Renderer {
    if std::io::stderr().is_terminal() {
        spawn_bars(progress)
    } else {
        spawn_log(progress, interval)
    }
}

/// The off-terminal renderer: a `progress` line per phase that moved since the last one.
pub fn spawn_log(progress: Arc<Progress>, interval: Duration) -> Renderer {
    let shown = Arc::clone(&progress);
    let task = tokio::spawn(async move {
        let mut last = [None; 4];
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            for (now, last) in shown.snapshot().into_iter().zip(&mut last) {
                if now.active && *last != Some(now.done) {
                    log_line(now);
                    *last = Some(now.done);
                }
            }
        }
    });
    Renderer {
        task,
        bars: None,
        progress,
    }
}

fn log_line(p: PhaseProgress) {
    match p.total {
        Some(total) => tracing::info!(
            phase = p.phase.name(),
            done = p.done,
            total,
            unit = p.phase.unit(),
            "progress"
        ),
        None => tracing::info!(
            phase = p.phase.name(),
            done = p.done,
            unit = p.phase.unit(),
            "progress"
        ),
    }
}

fn spawn_bars(progress: Arc<Progress>) -> Renderer {
    let bars = Arc::new(Mutex::new(Bars::new()));
    let (shown, drawn) = (Arc::clone(&progress), Arc::clone(&bars));
    let task = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(BAR_TICK);
        loop {
            ticks.tick().await;
            drawn.lock().expect("bars lock").update(&shown.snapshot());
        }
    });
    Renderer {
        task,
        bars: Some(bars),
        progress,
    }
}

impl Drop for Renderer {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(bars) = &self.bars {
            let mut bars = bars.lock().expect("bars lock");
            bars.update(&self.progress.snapshot());
            bars.finish();
        }
    }
}

/// One bar per phase, added when the phase first runs.
struct Bars {
    multi: MultiProgress,
    bars: [Option<ProgressBar>; 4],
}

impl Bars {
    fn new() -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Default::default(),
        }
    }

    fn update(&mut self, snapshot: &[PhaseProgress; 4]) {
        for (p, bar) in snapshot.iter().zip(&mut self.bars) {
            if !p.active && bar.is_none() {
                continue;
            }
            let bar = bar.get_or_insert_with(|| self.multi.add(new_bar(p.phase, p.total)));
            if let Some(total) = p.total {
                bar.set_length(total);
            }
            bar.set_position(p.done);
            if !p.active && !bar.is_finished() {
                bar.finish();
            } else if p.active && bar.is_finished() {
                bar.reset();
            }
        }
    }

    fn finish(&mut self) {
        for bar in self.bars.iter().flatten() {
            bar.finish();
        }
    }
}

fn new_bar(phase: Phase, total: Option<u64>) -> ProgressBar {
    let template = match total {
        Some(_) => format!(
            "{:<10} [{{bar:30}}] {{pos}}/{{len}} {} ({{per_sec}}, {{eta}} left)",
            phase.name(),
            phase.unit()
        ),
        None => format!(
            "{:<10} {{spinner}} {{pos}} {} ({{per_sec}})",
            phase.name(),
            phase.unit()
        ),
    };
    ProgressBar::new(total.unwrap_or(0)).with_style(
        ProgressStyle::with_template(&template)
            .expect("the bar templates are valid")
            .progress_chars("=> "),
    )
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A writer the test's subscriber logs into.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn off_a_terminal_a_line_per_interval_while_a_phase_moves_without_colour() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let progress = Arc::new(Progress::default());
        let renderer = spawn_log(Arc::clone(&progress), Duration::from_secs(5));
        let running = progress.run(Phase::Backfill, None);
        for _ in 0..6 {
            progress.add(Phase::Backfill, 2_000);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        // Nothing moves for 10 s: no line.
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(running);
        drop(renderer);
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        // 12 s of movement at one line per 5 s: at 5 s and 10 s (and the one at 15 s sees the
        // last count, which the line at 10 s had not).
        assert!((2..=3).contains(&lines.len()), "{log}");
        assert!(
            lines[0].contains("progress phase=\"backfill\" done=6000 unit=\"orders\""),
            "{log}"
        );
        assert!(lines[1].contains("done=1"), "10,000 or 12,000: {log}");
        assert!(!log.contains('\u{1b}'), "no colour codes: {log}");
    }
}
