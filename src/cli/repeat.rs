//! `--json`, `--watch`, `--interval`, `--count`: how a command that reads something repeats.

#[derive(clap::Args, Debug, Clone)]
pub struct Repeat {
    /// One JSON object per reading, one line each with --watch.
    #[arg(long)]
    pub json: bool,
    /// Read again every --interval seconds until interrupted.
    #[arg(long)]
    pub watch: bool,
    #[arg(long, default_value_t = 1.0, value_parser = crate::input::seconds(0.1))]
    pub interval: f64,
    /// With --watch: stop after this many readings.
    #[arg(long)]
    pub count: Option<u64>,
}

impl Repeat {
    /// After `n` readings: whether that was the last.
    pub fn done(&self, n: u64) -> bool {
        !self.watch || self.count.is_some_and(|c| n >= c)
    }

    /// Waits for the next reading; false when interrupted (Ctrl-C).
    pub async fn wait(&self) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(crate::input::duration(self.interval)) => true,
            _ = tokio::signal::ctrl_c() => false,
        }
    }
}
