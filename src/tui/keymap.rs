//! Keys, k9s style: one table of bindings per pane plus global ones, remappable under
//! `tui.keys`, from which the help screen and the hint bar are generated. The defaults avoid
//! the chords terminal multiplexers take (ctrl-b, ctrl-a).
use crate::config::keys::{KeyName, KeySpec};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use indexmap::IndexMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmd {
    Quit,
    Help,
    CommandLine,
    Filter,
    NextPane,
    PrevPane,
    Back,
    Up,
    Down,
    Top,
    Bottom,
    PageUp,
    PageDown,
    GoPane(usize),
    Start,
    Stop,
    Restart,
    ShowLogs,
    Probe,
    ChatRoute,
    BenchRoute,
    FocusInput,
    NextRoute,
    PrevRoute,
    Settings,
    Save,
    NewChat,
    Run,
    More,
    Less,
    Baseline,
    Follow,
    Wrap,
    NextServer,
    PrevServer,
    Left,
    Right,
    Edit,
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ctx {
    Global,
    Servers,
    Gpu,
    Routes,
    Chat,
    Bench,
    Logs,
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub ctx: Ctx,
    pub key: KeySpec,
    pub cmd: Cmd,
    /// The name under `tui.keys` (empty when the key cannot be changed).
    pub name: &'static str,
    pub help: &'static str,
    /// The key shown in hints; alternates (arrows next to j/k) are not.
    pub primary: bool,
    /// Shown in the hint bar.
    pub hint: bool,
}

/// A `tui.keys` entry the key map cannot take: the command it names, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyError {
    pub name: String,
    pub message: String,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tui.keys.{}: {}", self.name, self.message)
    }
}

#[derive(Debug, Clone)]
pub struct KeyMap {
    bindings: Vec<Binding>,
}

fn k(s: &str) -> KeySpec {
    KeySpec::parse(s).expect("a valid built-in key")
}

impl KeyMap {
    pub fn defaults() -> Self {
        use Cmd::*;
        use Ctx::*;
        // (context, key, command, config name, help, primary, in the hint bar)
        let table: Vec<(Ctx, &str, Cmd, &'static str, &'static str, bool, bool)> = vec![
            (
                Global,
                "q",
                Quit,
                "quit",
                "quit (asks first when servers this console started are running)",
                true,
                true,
            ),
            (Global, "?", Help, "help", "help for this pane", true, true),
            (
                Global,
                ":",
                CommandLine,
                "command",
                "command line: :servers :gpu :routes :chat :bench :logs NAME :q",
                true,
                true,
            ),
            (
                Global,
                "/",
                Filter,
                "filter",
                "filter this list (highlights in logs)",
                true,
                false,
            ),
            (
                Global,
                "tab",
                NextPane,
                "next_pane",
                "next pane",
                true,
                false,
            ),
            (
                Global,
                "backtab",
                PrevPane,
                "prev_pane",
                "previous pane",
                true,
                false,
            ),
            (
                Global,
                "esc",
                Back,
                "back",
                "back: close, clear the filter, cancel, previous pane",
                true,
                false,
            ),
            (Global, "k", Up, "up", "move up", true, false),
            (Global, "up", Up, "", "move up", false, false),
            (Global, "j", Down, "down", "move down", true, false),
            (Global, "down", Down, "", "move down", false, false),
            (Global, "g", Top, "top", "to the top", true, false),
            (
                Global,
                "G",
                Bottom,
                "bottom",
                "to the bottom (and follow a log)",
                true,
                false,
            ),
            (Global, "pageup", PageUp, "page_up", "page up", true, false),
            (
                Global,
                "pagedown",
                PageDown,
                "page_down",
                "page down",
                true,
                false,
            ),
            (Global, "1", GoPane(0), "", "Servers", true, false),
            (Global, "2", GoPane(1), "", "GPU", true, false),
            (Global, "3", GoPane(2), "", "Routes", true, false),
            (Global, "4", GoPane(3), "", "Chat", true, false),
            (Global, "5", GoPane(4), "", "Bench", true, false),
            (Global, "6", GoPane(5), "", "Logs", true, false),
            (
                Servers,
                "s",
                Start,
                "start",
                "start the selected server",
                true,
                true,
            ),
            (
                Servers,
                "x",
                Stop,
                "stop",
                "stop the selected server (asks first)",
                true,
                true,
            ),
            (
                Servers,
                "r",
                Restart,
                "restart",
                "restart the selected server",
                true,
                true,
            ),
            (
                Servers,
                "l",
                ShowLogs,
                "logs",
                "the selected server's log",
                true,
                true,
            ),
            (
                Servers,
                "enter",
                ShowLogs,
                "",
                "the selected server's log",
                false,
                false,
            ),
            (
                Routes,
                "p",
                Probe,
                "probe",
                "probe the selected route now",
                true,
                true,
            ),
            (
                Routes,
                "c",
                ChatRoute,
                "chat_route",
                "chat with the selected route",
                true,
                true,
            ),
            (
                Routes,
                "b",
                BenchRoute,
                "bench_route",
                "load-test the selected route",
                true,
                true,
            ),
            (
                Chat,
                "i",
                FocusInput,
                "focus_input",
                "type a message (enter sends, alt-enter: new line)",
                true,
                true,
            ),
            (
                Chat,
                "enter",
                FocusInput,
                "",
                "type a message",
                false,
                false,
            ),
            (Chat, "]", NextRoute, "next_route", "next route", true, true),
            (
                Chat,
                "[",
                PrevRoute,
                "prev_route",
                "previous route",
                true,
                false,
            ),
            (
                Chat,
                "e",
                Settings,
                "settings",
                "system prompt and parameters",
                true,
                true,
            ),
            (
                Chat,
                "w",
                Save,
                "save",
                "save the conversation as Markdown",
                true,
                true,
            ),
            (
                Chat,
                "n",
                NewChat,
                "new_chat",
                "new conversation",
                true,
                true,
            ),
            (
                Bench,
                "r",
                Run,
                "run",
                "run the load test (esc stops it)",
                true,
                true,
            ),
            (
                Bench,
                "enter",
                Edit,
                "",
                "edit the selected field",
                true,
                true,
            ),
            (
                Bench,
                "+",
                More,
                "more",
                "more load while running, else a larger value",
                true,
                true,
            ),
            (Bench, "=", More, "", "more load", false, false),
            (
                Bench,
                "-",
                Less,
                "less",
                "less load while running, else a smaller value",
                true,
                true,
            ),
            (Bench, "h", Left, "", "previous choice", true, false),
            (Bench, "left", Left, "", "previous choice", false, false),
            (Bench, "l", Right, "", "next choice", true, false),
            (Bench, "right", Right, "", "next choice", false, false),
            (Bench, "w", Save, "", "save the result as JSON", true, true),
            (
                Bench,
                "b",
                Baseline,
                "baseline",
                "keep the result as the baseline to compare with",
                true,
                true,
            ),
            (Logs, "f", Follow, "follow", "follow the log", true, true),
            (Logs, "w", Wrap, "wrap", "wrap long lines", true, true),
            (
                Logs,
                "]",
                NextServer,
                "next_server",
                "next server",
                true,
                true,
            ),
            (
                Logs,
                "[",
                PrevServer,
                "prev_server",
                "previous server",
                true,
                false,
            ),
        ];
        KeyMap {
            bindings: table
                .into_iter()
                .map(|(ctx, key, cmd, name, help, primary, hint)| Binding {
                    ctx,
                    key: k(key),
                    cmd,
                    name,
                    help,
                    primary,
                    hint,
                })
                .collect(),
        }
    }

    /// The defaults with `tui.keys` applied: each named command's main key is replaced. A
    /// key that is then bound twice where both apply is an error naming both commands.
    pub fn with_overrides(keys: &IndexMap<String, String>) -> Result<Self, KeyError> {
        let err = |name: &str, message: String| KeyError {
            name: name.to_string(),
            message,
        };
        let mut m = Self::defaults();
        for (name, spec) in keys {
            let key = KeySpec::parse(spec).map_err(|e| err(name, e))?;
            let mut found = false;
            for b in m.bindings.iter_mut().filter(|b| b.name == name) {
                b.key = key;
                found = true;
            }
            if !found {
                return Err(err(name, "no such command".into()));
            }
        }
        for (i, a) in m.bindings.iter().enumerate() {
            for b in &m.bindings[i + 1..] {
                let overlap = a.ctx == b.ctx || a.ctx == Ctx::Global || b.ctx == Ctx::Global;
                if overlap && a.key == b.key && a.cmd != b.cmd {
                    let changed = [a, b].iter().any(|x| keys.contains_key(x.name));
                    if changed {
                        let (x, y) = if keys.contains_key(a.name) {
                            (a, b)
                        } else {
                            (b, a)
                        };
                        return Err(err(
                            x.name,
                            format!(
                                "`{}` is already the key of `{}` ({})",
                                x.key.label(),
                                if y.name.is_empty() { y.help } else { y.name },
                                if y.ctx == Ctx::Global {
                                    "everywhere".to_string()
                                } else {
                                    format!("{:?} pane", y.ctx)
                                }
                            ),
                        ));
                    }
                }
            }
        }
        Ok(m)
    }

    /// The pane's own binding first, then the global one.
    pub fn lookup(&self, ctx: Ctx, ev: &KeyEvent) -> Option<Cmd> {
        let find = |c: Ctx| {
            self.bindings
                .iter()
                .find(|b| b.ctx == c && matches(&b.key, ev))
                .map(|b| b.cmd)
        };
        find(ctx).or_else(|| find(Ctx::Global))
    }

    /// Help lines for a pane: its own keys, then the global ones.
    pub fn help(&self, ctx: Ctx) -> Vec<(String, &'static str)> {
        let mut out: Vec<(String, &'static str)> = Vec::new();
        for c in [ctx, Ctx::Global] {
            for b in self.bindings.iter().filter(|b| b.ctx == c && b.primary) {
                // The six pane keys read better as one line.
                if let Cmd::GoPane(i) = b.cmd {
                    if i == 0 {
                        out.push(("1-6".into(), "panes: Servers GPU Routes Chat Bench Logs"));
                    }
                    continue;
                }
                let mut label = b.key.label();
                for alt in self
                    .bindings
                    .iter()
                    .filter(|x| x.ctx == c && x.cmd == b.cmd && !x.primary)
                {
                    label.push_str(&format!(" {}", alt.key.label()));
                }
                if !out.iter().any(|(l, h)| *l == label && *h == b.help) {
                    out.push((label, b.help));
                }
            }
        }
        out
    }

    /// Short hints for the bottom bar: the pane's keys, then a few global ones.
    pub fn hints(&self, ctx: Ctx) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for c in [ctx, Ctx::Global] {
            for b in self.bindings.iter().filter(|b| b.ctx == c && b.hint) {
                let word = b.help.split([' ', '(', ',', ':']).next().unwrap_or(b.help);
                let word = match b.cmd {
                    Cmd::ShowLogs => "logs",
                    Cmd::FocusInput => "type",
                    Cmd::NextRoute => "route",
                    Cmd::Settings => "settings",
                    Cmd::Edit => "edit",
                    Cmd::More => "more",
                    Cmd::Less => "less",
                    Cmd::Baseline => "baseline",
                    Cmd::CommandLine => "command",
                    Cmd::Help => "help",
                    Cmd::NewChat => "new",
                    Cmd::ChatRoute => "chat",
                    Cmd::BenchRoute => "bench",
                    Cmd::NextServer => "server",
                    _ => word,
                };
                out.push((b.key.label(), word.to_string()));
            }
        }
        out
    }

    pub fn key_of(&self, cmd: Cmd) -> Option<String> {
        self.bindings
            .iter()
            .find(|b| b.cmd == cmd && b.primary)
            .map(|b| b.key.label())
    }
}

/// Whether a terminal key event is the configured key. A character's case says all about
/// Shift, so Shift is ignored for characters.
pub fn matches(spec: &KeySpec, ev: &KeyEvent) -> bool {
    let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
    let alt = ev.modifiers.contains(KeyModifiers::ALT);
    if spec.ctrl != ctrl || spec.alt != alt {
        return false;
    }
    match (spec.key, ev.code) {
        (KeyName::Char(a), KeyCode::Char(b)) => {
            if ctrl {
                a.eq_ignore_ascii_case(&b)
            } else {
                a == b
            }
        }
        (KeyName::Enter, KeyCode::Enter) => true,
        (KeyName::Esc, KeyCode::Esc) => true,
        (KeyName::Tab, KeyCode::Tab) => !ev.modifiers.contains(KeyModifiers::SHIFT),
        (KeyName::BackTab, KeyCode::BackTab) => true,
        (KeyName::Backspace, KeyCode::Backspace) => true,
        (KeyName::Delete, KeyCode::Delete) => true,
        (KeyName::Insert, KeyCode::Insert) => true,
        (KeyName::Up, KeyCode::Up) => true,
        (KeyName::Down, KeyCode::Down) => true,
        (KeyName::Left, KeyCode::Left) => true,
        (KeyName::Right, KeyCode::Right) => true,
        (KeyName::PageUp, KeyCode::PageUp) => true,
        (KeyName::PageDown, KeyCode::PageDown) => true,
        (KeyName::Home, KeyCode::Home) => true,
        (KeyName::End, KeyCode::End) => true,
        (KeyName::F(a), KeyCode::F(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(c, m)
    }

    #[test]
    fn pane_keys_win_over_global_ones_and_shift_is_the_case() {
        let m = KeyMap::defaults();
        let s = key(KeyCode::Char('s'), KeyModifiers::NONE);
        assert_eq!(m.lookup(Ctx::Servers, &s), Some(Cmd::Start));
        assert_eq!(m.lookup(Ctx::Gpu, &s), None);
        let big_g = key(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(m.lookup(Ctx::Logs, &big_g), Some(Cmd::Bottom));
        assert_eq!(
            m.lookup(Ctx::Bench, &key(KeyCode::Char('l'), KeyModifiers::NONE)),
            Some(Cmd::Right)
        );
        assert_eq!(
            m.lookup(Ctx::Servers, &key(KeyCode::Char('l'), KeyModifiers::NONE)),
            Some(Cmd::ShowLogs)
        );
    }

    #[test]
    fn overrides_replace_the_main_key_and_clashes_are_named() {
        let mut o = IndexMap::new();
        o.insert("stop".to_string(), "X".to_string());
        let m = KeyMap::with_overrides(&o).unwrap();
        assert_eq!(
            m.lookup(Ctx::Servers, &key(KeyCode::Char('X'), KeyModifiers::SHIFT)),
            Some(Cmd::Stop)
        );
        assert_eq!(
            m.lookup(Ctx::Servers, &key(KeyCode::Char('x'), KeyModifiers::NONE)),
            None
        );
        o.insert("stop".to_string(), "s".to_string());
        let e = KeyMap::with_overrides(&o).unwrap_err().to_string();
        assert!(
            e.contains("tui.keys.stop: `s` is already the key of `start`"),
            "{e}"
        );
        let mut q = IndexMap::new();
        q.insert("probe".to_string(), "q".to_string());
        let e = KeyMap::with_overrides(&q).unwrap_err().to_string();
        assert!(e.contains("`quit` (everywhere)"), "{e}");
    }

    #[test]
    fn no_default_is_a_multiplexer_chord_and_help_lists_both_levels() {
        let m = KeyMap::defaults();
        assert!(m.bindings.iter().all(|b| !b.key.clashes_with_multiplexer()));
        let help = m.help(Ctx::Servers);
        assert!(help.iter().any(|(k, h)| k == "s" && h.starts_with("start")));
        assert!(help
            .iter()
            .any(|(k, h)| k == "k ↑" && h.starts_with("move up")));
        assert!(help.iter().any(|(k, _)| k == "q"));
    }
}
