//! The Models pane: a scan when it is first shown (and on `r`), the selection, the launch
//! form (enter edits a field), `s` to start its server and `w` to keep it as a profile.
use super::super::action::Effect;
use super::super::app::*;
use super::super::models_state::{self, LAUNCH_FIELDS};
use super::*;

/// The first look at the pane scans; later ones show the list as it was, with its age.
pub(super) fn ensure_scanned(app: &mut App, fx: &mut Vec<Effect>) {
    if app.pane == Pane::Models && app.models.scanned_at.is_none() && !app.models.scanning {
        rescan(app, fx);
    }
}

fn rescan(app: &mut App, fx: &mut Vec<Effect>) {
    app.models.scanning = true;
    fx.push(Effect::ScanModels);
}

pub(super) fn models_found(app: &mut App, list: Vec<crate::models::Model>, at: f64) {
    app.models.list = list;
    app.models.scanned_at = Some(at);
    app.models.scanning = false;
    app.models.selected = app
        .models
        .selected
        .min(app.models.list.len().saturating_sub(1));
}

/// The pane's own handling of a command; false leaves it to the global one.
pub(super) fn models_cmd(app: &mut App, fx: &mut Vec<Effect>, cmd: Cmd) -> bool {
    let form_open = app.models.form.is_some();
    match cmd {
        Cmd::Rescan => rescan(app, fx),
        Cmd::Up | Cmd::Down | Cmd::Top | Cmd::Bottom | Cmd::PageUp | Cmd::PageDown => {
            let (sel, len) = match app.models.form.as_mut() {
                Some(f) => (&mut f.field, LAUNCH_FIELDS.len()),
                None => (&mut app.models.selected, app.models.list.len()),
            };
            let last = len.saturating_sub(1);
            *sel = match cmd {
                Cmd::Up => sel.saturating_sub(1),
                Cmd::Down => (*sel + 1).min(last),
                Cmd::Top | Cmd::PageUp => 0,
                _ => last,
            };
        }
        Cmd::Open if form_open => {
            if let Some(f) = &app.models.form {
                app.typing = Typing::LaunchField(f.field, f.values[f.field].clone());
            }
        }
        Cmd::Open => open(app),
        Cmd::Start if !form_open => open(app),
        Cmd::Start => launch(app, fx, false),
        Cmd::Save if form_open => launch(app, fx, true),
        Cmd::Save => app.notify("open the launch form first (enter), then w keeps it", true),
        Cmd::Back if form_open => app.models.form = None,
        _ => return false,
    }
    true
}

fn open(app: &mut App) {
    let Some(m) = app.models.current() else {
        app.notify("no model selected", true);
        return;
    };
    match models_state::open_form(&app.models, m) {
        Ok(f) => app.models.form = Some(f),
        Err(e) => app.notify(e, true),
    }
}

/// Starts the form's server now, or keeps it as a profile (`save`) without starting it.
fn launch(app: &mut App, fx: &mut Vec<Effect>, save: bool) {
    let what = if save {
        "save profiles"
    } else {
        "start servers"
    };
    if read_only(app, what) {
        return;
    }
    if save && !app.models.can_save {
        app.notify("this console runs on the built-in default: start it with --config FILE to keep profiles", true);
        return;
    }
    let Some(f) = &app.models.form else {
        return;
    };
    let np = match models_state::profile_for(&app.models, f) {
        Ok(p) => p,
        Err(e) => {
            app.notify(e, true);
            return;
        }
    };
    if app.servers.list.iter().any(|s| s.name == np.name) {
        app.notify(
            format!("name: a server `{}` exists already; pick another", np.name),
            true,
        );
        return;
    }
    app.models.taken_ports.push(np.port);
    if save {
        app.notify(format!("{}: saving the profile…", np.name), false);
        fx.push(Effect::SaveProfile(Box::new(np)));
    } else {
        app.notify(format!("{}: starting…", np.name), false);
        app.servers.started_here.insert(np.name.clone());
        app.servers.busy.insert(np.name.clone(), Op::Start);
        fx.push(Effect::Launch(Box::new(np)));
        app.models.form = None;
    }
}

/// Keeps a field's text; a route chosen brings its port with it.
fn set_field(app: &mut App, field: usize, text: &str) {
    let Some(mut f) = app.models.form.take() else {
        return;
    };
    f.values[field] = text.trim().to_string();
    if field == models_state::ROUTE_FIELD {
        models_state::route_chosen(&app.models, &mut f);
    }
    app.models.form = Some(f);
}

/// A field being typed: enter keeps it, tab and the arrows keep it and move on, esc drops it.
pub(super) fn launch_typing(app: &mut App, field: usize, mut buf: String, k: KeyEvent) {
    let key = line_edit(&mut buf, &k);
    if app.models.form.is_none() {
        app.typing = Typing::None;
        return;
    }
    match key {
        LineKey::Enter => {
            set_field(app, field, &buf);
            app.typing = Typing::None;
        }
        LineKey::Esc => app.typing = Typing::None,
        LineKey::Other if matches!(k.code, KeyCode::Tab | KeyCode::Down | KeyCode::Up) => {
            set_field(app, field, &buf);
            let n = LAUNCH_FIELDS.len();
            let next = if k.code == KeyCode::Up {
                (field + n - 1) % n
            } else {
                (field + 1) % n
            };
            if let Some(f) = app.models.form.as_mut() {
                f.field = next;
                app.typing = Typing::LaunchField(next, f.values[next].clone());
            }
        }
        _ => app.typing = Typing::LaunchField(field, buf),
    }
}
