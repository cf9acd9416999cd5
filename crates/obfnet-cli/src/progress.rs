//! Progress display for training jobs: indicatif bars with ETA on a terminal, a few plain
//! lines otherwise (CI logs, pipes).

use indicatif::{ProgressBar, ProgressStyle};
use obfnet_nn::TrainEvent;

/// Turns [`TrainEvent`]s into progress bars (interactive) or epoch lines on stderr.
pub(crate) struct Bars {
    interactive: bool,
    bar: Option<ProgressBar>,
    phase: String,
    last_loss: f32,
}

impl Bars {
    pub(crate) fn new(interactive: bool) -> Bars {
        Bars {
            interactive,
            bar: None,
            phase: String::new(),
            last_loss: f32::NAN,
        }
    }

    pub(crate) fn on(&mut self, event: TrainEvent) {
        match event {
            TrainEvent::Phase { name, total_steps } => {
                self.finish();
                self.phase = name;
                if self.interactive {
                    let bar = ProgressBar::new(total_steps);
                    if let Ok(style) = ProgressStyle::with_template(
                        "{prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} steps  {elapsed_precise} ETA {eta}  {msg}",
                    ) {
                        bar.set_style(style.progress_chars("=> "));
                    }
                    bar.set_prefix(self.phase.clone());
                    self.bar = Some(bar);
                } else {
                    eprintln!("[obfnet] {}: {total_steps} steps", self.phase);
                }
            }
            TrainEvent::Step { step, loss } => {
                self.last_loss = loss;
                if let Some(bar) = &self.bar {
                    bar.set_position(step);
                    if step % 10 == 0 {
                        bar.set_message(format!("loss {loss:.4}"));
                    }
                }
            }
            TrainEvent::Epoch { epoch, mean_loss } => {
                let line = format!(
                    "[obfnet] {}: epoch {} mean loss {mean_loss:.4}",
                    self.phase,
                    epoch + 1
                );
                match &self.bar {
                    Some(bar) => bar.println(line),
                    None => eprintln!("{line}"),
                }
            }
            TrainEvent::Evaluating => match &self.bar {
                Some(bar) => bar.set_message("evaluating on the test split"),
                None => eprintln!("[obfnet] {}: evaluating on the test split", self.phase),
            },
        }
    }

    pub(crate) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl obfnet_report::Progress for Bars {
    fn event(&mut self, event: TrainEvent) {
        self.on(event);
    }

    fn finish(&mut self) {
        Bars::finish(self);
    }
}
