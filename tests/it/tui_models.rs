//! The Models pane without a terminal: the scan on first sight, the list and the selected
//! model's estimate, the launch form (its fields, its live estimate, its errors by field), and
//! the effects that start a server or keep a profile.
use crate::models::hf_cache;
use crate::tui::{app, ch, key, screen, typed};
use anorag::models::{self, Places};
use anorag::tui::action::{Action, Effect};
use anorag::tui::app::{Pane, Typing};
use anorag::tui::update::update;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

const NOW: f64 = 1_795_600_000.0;

fn ready_app() -> (anorag::tui::app::App, tempfile::TempDir) {
    let d = tempfile::tempdir().unwrap();
    hf_cache(d.path());
    let list = models::discover(&Places {
        hf: Some(d.path().to_path_buf()),
        ..Places::default()
    });
    let mut a = app();
    a.models.cpu_kv = Some(1 << 30);
    a.models.executable = "/opt/vllm/bin/vllm".into();
    a.models.taken_ports = vec![8000];
    a.models.can_save = true;
    let fx = ch(&mut a, '9');
    assert_eq!(a.pane, Pane::Models);
    assert_eq!(fx, vec![Effect::ScanModels], "the first look scans");
    assert!(a.models.scanning);
    assert!(update(&mut a, Action::Models(Box::new(list), NOW - 12.0)).is_empty());
    (a, d)
}

/// The test cache's paths vary; the screen shows them.
fn masked(s: String, d: &tempfile::TempDir) -> String {
    s.replace(d.path().to_str().unwrap(), "/CACHE")
}

#[test]
fn the_models_pane_lists_estimates_and_opens_a_launch_form() {
    let (mut a, d) = ready_app();
    insta::assert_snapshot!("models_list", masked(screen(&a, 110, 30), &d));
    assert!(ch(&mut a, 'j').is_empty());
    assert_eq!(a.models.selected, 1);
    ch(&mut a, 'k');
    key(&mut a, KeyCode::Enter);
    let f = a.models.form.clone().expect("enter opens the form");
    assert_eq!(
        f.model, "acme/tiny-chat",
        "a hub model is served by its id from the cache"
    );
    assert_eq!(f.values[0], "tiny-chat");
    assert_eq!(f.values[7], "8001", "the first port no profile holds");
    insta::assert_snapshot!("models_launch_form", masked(screen(&a, 110, 30), &d));

    // max model len: a length above the model's own is refused before anything starts.
    for _ in 0..4 {
        ch(&mut a, 'j');
    }
    key(&mut a, KeyCode::Enter);
    assert!(matches!(a.typing, Typing::LaunchField(4, _)));
    update(
        &mut a,
        Action::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)),
    );
    typed(&mut a, "100000");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.models.form.as_ref().unwrap().values[4], "100000");
    let s = screen(&a, 110, 30);
    assert!(
        s.contains("will not start: max_model_len 100000 is above the model's limit of 4096"),
        "{s}"
    );

    // A bad port is named, and nothing starts.
    ch(&mut a, 'G');
    ch(&mut a, 'k');
    key(&mut a, KeyCode::Enter);
    update(
        &mut a,
        Action::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)),
    );
    typed(&mut a, "80x");
    key(&mut a, KeyCode::Enter);
    assert!(ch(&mut a, 's').is_empty());
    let n = a.notice.clone().unwrap();
    assert!(
        n.error && n.text.starts_with("port: `80x` is not a port"),
        "{}",
        n.text
    );
}

#[test]
fn s_starts_the_forms_server_and_w_keeps_it_as_a_profile() {
    let (mut a, _d) = ready_app();
    key(&mut a, KeyCode::Enter);
    let fx = ch(&mut a, 'w');
    let [Effect::SaveProfile(p)] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    assert_eq!(
        (p.name.as_str(), p.port, p.max_model_len),
        ("tiny-chat", 8001, Some(4096))
    );
    assert_eq!(p.executable.as_deref(), Some("/opt/vllm/bin/vllm"));
    assert!(a.models.form.is_some(), "w keeps the form open");

    // The next port is offered once this one is taken; s starts at once and closes the form.
    key(&mut a, KeyCode::Esc);
    key(&mut a, KeyCode::Enter);
    ch(&mut a, 'G');
    ch(&mut a, 'k');
    assert_eq!(a.models.form.as_ref().unwrap().values[7], "8002");
    key(&mut a, KeyCode::Enter);
    key(&mut a, KeyCode::Esc);
    let fx = ch(&mut a, 's');
    let [Effect::Launch(p)] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    assert_eq!((p.model.as_str(), p.port), ("acme/tiny-chat", 8002));
    assert!(a.models.form.is_none());
    assert!(
        a.servers.started_here.contains("tiny-chat"),
        "asked about on quit"
    );

    // Esc closes a form; a read-only console starts nothing.
    key(&mut a, KeyCode::Enter);
    key(&mut a, KeyCode::Esc);
    assert!(a.models.form.is_none());
    a.read_only = true;
    key(&mut a, KeyCode::Enter);
    assert!(ch(&mut a, 's').is_empty());
    assert!(a.notice.as_ref().unwrap().text.contains("read-only"));
}

#[test]
fn a_route_chosen_in_the_form_brings_its_port_and_model_name() {
    let (mut a, _d) = ready_app();
    a.models.routes = vec![anorag::tui::models_state::LocalRoute {
        name: "tiny_qwen".into(),
        port: 8001,
        model: "qwen2_5_0_5b".into(),
    }];
    key(&mut a, KeyCode::Enter);
    ch(&mut a, 'G');
    key(&mut a, KeyCode::Enter);
    typed(&mut a, "nope");
    key(&mut a, KeyCode::Enter);
    assert!(ch(&mut a, 's').is_empty());
    let n = a.notice.clone().unwrap();
    assert!(
        n.text
            .starts_with("route: no route `nope` on this machine (routes: tiny_qwen)"),
        "{}",
        n.text
    );
    key(&mut a, KeyCode::Enter);
    update(
        &mut a,
        Action::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)),
    );
    typed(&mut a, "tiny_qwen");
    key(&mut a, KeyCode::Enter);
    assert_eq!(
        a.models.form.as_ref().unwrap().values[7],
        "8001",
        "the route's port"
    );
    let fx = ch(&mut a, 's');
    let [Effect::Launch(p)] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    assert_eq!(p.route.as_deref(), Some("tiny_qwen"));
    assert_eq!(p.served_model_name.as_deref(), Some("qwen2_5_0_5b"));
    assert_eq!(p.port, 8001);
}
