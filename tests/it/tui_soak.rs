//! The Bench pane's soak mode: the form's mode cycles to soak (with a duration), the run's
//! plan carries its windows, the windows are drawn as they close and the verdict when it ends.
use crate::tui::{app, ch, key, progress, result, screen, to_field};
use anorag::bench::soak::{self, Memory, Rules, SoakResult, Window};
use anorag::tui::action::{Action, Effect};
use anorag::tui::update::update;
use crossterm::event::KeyCode;

fn window(i: usize, rss_mib: u64) -> Window {
    Window {
        index: i,
        start_s: i as f64 * 10.0,
        end_s: (i + 1) as f64 * 10.0,
        completed: 100,
        output_tokens_per_s: 320.0,
        ttft_p99_ms: Some(40.0 + i as f64),
        memory: Some(Memory {
            rss_bytes: Some(rss_mib << 20),
            gpu_bytes: None,
            source: "test".into(),
        }),
        ..Window::default()
    }
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
    p.soak = (0..3).map(|i| window(i, 900 + 30 * i as u64)).collect();
    update(&mut a, Action::BenchProgress(id, Box::new(p)));
    insta::assert_snapshot!("bench_soak_running", screen(&a, 120, 40));
    let windows: Vec<Window> = (0..6).map(|i| window(i, 900 + 60 * i as u64)).collect();
    let rules = Rules::default();
    let mut r = result("demo", 40.0);
    r.soak = Some(SoakResult {
        window_s: 10.0,
        verdict: soak::verdict(&windows, &rules),
        windows,
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
