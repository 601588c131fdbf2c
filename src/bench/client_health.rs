//! Whether the client, not the server, limited a run: its CPU time and the verdict.
use super::plan::{Load, Plan};
use super::recorder::Recorder;
use super::result::ClientHealth;

/// What every run measures of its client: the waits for headers and first token, its CPU
/// over the run, the cores it had, the HTTP client that streamed.
pub(super) fn measured(
    rec: &Recorder,
    cpu: f64,
    duration: f64,
    http: &'static str,
) -> ClientHealth {
    ClientHealth {
        time_to_headers: rec.headers.stats(),
        headers_to_first_token: rec.after_headers.stats(),
        cpu_s: cpu,
        cpu_pct: 100.0 * cpu / duration,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        http,
        ..ClientHealth::default()
    }
}

pub(super) fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// When the client, not the server, limited the run, say so: those numbers are not the
/// server's.
pub(super) fn client_verdict(c: &ClientHealth, plan: &Plan, achieved: Option<f64>) -> Vec<String> {
    let mut w = Vec::new();
    let lag_limit = match plan.load {
        Load::Open { rate, .. } => (100.0 / rate).clamp(1.0, 10.0),
        Load::Closed { .. } => 10.0,
    };
    if c.dispatch_lag.count > 0 && c.dispatch_lag.p99 > lag_limit {
        w.push(format!(
            "requests left late: dispatch lag p99 {:.1} ms (limit {lag_limit:.1} ms); the client could not keep the schedule",
            c.dispatch_lag.p99
        ));
    }
    if c.cpu_pct > 85.0 * c.cores as f64 {
        w.push(format!(
            "the client used {:.0}% of {} cores: it was CPU-bound",
            c.cpu_pct, c.cores
        ));
    }
    if let (
        Load::Open {
            rate,
            max_concurrency: None,
            ..
        },
        Some(a),
    ) = (plan.load, achieved)
    {
        if a < rate * 0.99 {
            w.push(format!("achieved {a:.2} req/s of the {rate:.2} asked for"));
        }
    }
    w
}
