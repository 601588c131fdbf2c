//! The Bench pane's soak mode: the form's mode cycles to soak (with a duration), the run's
//! plan carries its windows, the windows are drawn as they close and the verdict when it ends.
use crate::tui::{app, ch, key, progress, result, screen, to_field};
use anorag::bench::recorder::Outcome;
use anorag::bench::soak::{self, Memory, Rules, SoakResult, Window};
use anorag::tui::action::{Action, Effect};
use anorag::tui::update::update;
use crossterm::event::KeyCode;

/// `n` windows of 10 s as the aggregator closes them: 100 answers of 32 tokens each, TTFT
/// creeping up a millisecond a window, the server's RSS `step` MiB more each time.
fn windows(n: usize, step: u64) -> Vec<Window> {
    let mut agg = soak::Windows::new(10.0);
    for i in 0..n {
        for k in 0..100 {
            let end = i as f64 * 10.0 + k as f64 * 0.1;
            agg.add(&Outcome {
                start_s: end - 0.2,
                end_s: end,
                ttft_s: Some(0.040 + i as f64 * 0.001),
                e2el_s: Some(0.2),
                completion_tokens: Some(32),
                content_events: 32,
                ..Outcome::default()
            });
        }
        let w = agg.tick((i + 1) as f64 * 10.0).unwrap();
        w.memory = Some(Memory {
            rss_bytes: Some((900 + step * i as u64) << 20),
            gpu_bytes: None,
            source: "test".into(),
        });
    }
    agg.closed
}

#[test]
fn the_bench_form_runs_a_soak_and_shows_its_windows_and_verdict() {
    let mut a = app();
    ch(&mut a, '5');
    to_field(&mut a, "mode");
    ch(&mut a, 'l');
    ch(&mut a, 'l');
    assert!(
        a.bench.form.soak && a.bench.form.by_duration,
        "soak needs a duration"
    );
    a.bench.form.duration_s = 120.0;
    let fx = ch(&mut a, 'r');
    let Some(Effect::BenchStart { id, plan, .. }) = fx.first().cloned() else {
        panic!("{fx:?}")
    };
    assert_eq!(plan.soak.as_ref().map(|s| s.window_s), Some(10.0));
    let mut p = progress(300);
    p.soak = windows(3, 30);
    update(&mut a, Action::BenchProgress(id, Box::new(p)));
    insta::assert_snapshot!("bench_soak_running", screen(&a, 120, 40));
    let all = windows(6, 60);
    let rules = Rules::default();
    let mut r = result("demo", 40.0);
    r.soak = Some(SoakResult {
        window_s: 10.0,
        verdict: soak::verdict(&all, &rules),
        windows: all,
        rules,
    });
    update(&mut a, Action::BenchDone(id, Ok(vec![r])));
    let s = screen(&a, 120, 40);
    assert!(
        s.contains("soak FAIL: rss_growth_mib +300.0 MiB (limit 200 MiB)"),
        "{s}"
    );
    key(&mut a, KeyCode::Esc);
}
