//! The console's key map as data: commands, the panes they apply in, default keys, and the
//! `tui.keys` overrides with their clash checks. It lives below both the console (which matches
//! terminal events against it) and the config (which validates `tui.keys` against it), so there
//! is one list of commands and one clash check.
use super::keys::KeySpec;
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
    GoPane(Pane),
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
    Open,
    Pause,
    Rescan,
}

/// The console's panes in their order (keys 1-8, Tab): the one list of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pane {
    Servers,
    Gpu,
    Routes,
    Chat,
    Bench,
    Logs,
    Cluster,
    Traffic,
    Models,
}

pub const PANES: [Pane; 9] = [
    Pane::Servers,
    Pane::Gpu,
    Pane::Routes,
    Pane::Chat,
    Pane::Bench,
    Pane::Logs,
    Pane::Cluster,
    Pane::Traffic,
    Pane::Models,
];

impl Pane {
    pub fn title(self) -> &'static str {
        match self {
            Pane::Servers => "Servers",
            Pane::Gpu => "GPU",
            Pane::Routes => "Routes",
            Pane::Chat => "Chat",
            Pane::Bench => "Bench",
            Pane::Logs => "Logs",
            Pane::Cluster => "Cluster",
            Pane::Traffic => "Traffic",
            Pane::Models => "Models",
        }
    }

    /// Its place in `PANES` (its key is one more).
    pub fn index(self) -> usize {
        PANES.iter().position(|p| *p == self).unwrap_or(0)
    }

    pub fn from_name(s: &str) -> Option<Pane> {
        PANES
            .into_iter()
            .find(|p| p.title().eq_ignore_ascii_case(s))
    }

    /// The bindings that apply in this pane (besides the global ones).
    pub fn ctx(self) -> Ctx {
        Ctx::In(self)
    }
}

/// Where a binding applies: everywhere, or in one pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ctx {
    Global,
    In(Pane),
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub ctx: Ctx,
    pub key: KeySpec,
    pub cmd: Cmd,
    /// The name under `tui.keys`; alternates share their main key's name.
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
    /// The error is the name itself (point at the key in the file, not its value).
    pub on_key: bool,
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
    /// Commands left out of the help and the hint bar (a read-only console refuses them).
    hidden: Vec<Cmd>,
}

/// What a read-only console refuses: starting, stopping and restarting servers, load tests.
pub const READ_ONLY_REFUSED: [Cmd; 4] = [Cmd::Start, Cmd::Stop, Cmd::Restart, Cmd::Run];

/// The help screen's line for the pane keys.
fn panes_line() -> &'static str {
    static LINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LINE.get_or_init(|| {
        let titles: Vec<&str> = PANES.iter().map(|p| p.title()).collect();
        format!("panes: {}", titles.join(" "))
    })
}

/// The default bindings: (pane, key, command, name under `tui.keys`, help, main key of its
/// command there, shown in the hint bar). One line a binding, so the table reads as a table.
#[rustfmt::skip]
const DEFAULTS: &[(Ctx, &str, Cmd, &str, &str, bool, bool)] = {
    use Cmd::*;
    use Ctx::*;
    use Pane::*;
    &[
        (Global, "q", Quit, "quit", "quit (asks first when servers this console started are running)", true, true),
        (Global, "?", Help, "help", "help for this pane", true, true),
        (Global, ":", CommandLine, "command", "command line: :servers :gpu :routes :chat :bench :logs NAME :cluster :traffic :models :q", true, true),
        (Global, "/", Filter, "filter", "filter this list (highlights in logs)", true, false),
        (Global, "tab", NextPane, "next_pane", "next pane", true, false),
        (Global, "backtab", PrevPane, "prev_pane", "previous pane", true, false),
        (Global, "esc", Back, "back", "back: close, clear the filter, cancel, previous pane", true, false),
        (Global, "k", Up, "up", "move up", true, false),
        (Global, "up", Up, "up", "move up", false, false),
        (Global, "j", Down, "down", "move down", true, false),
        (Global, "down", Down, "down", "move down", false, false),
        (Global, "g", Top, "top", "to the top", true, false),
        (Global, "G", Bottom, "bottom", "to the bottom (and follow a log)", true, false),
        (Global, "pageup", PageUp, "page_up", "page up", true, false),
        (Global, "pagedown", PageDown, "page_down", "page down", true, false),
        (Global, "1", GoPane(Servers), "pane_servers", "Servers", true, false),
        (Global, "2", GoPane(Gpu), "pane_gpu", "GPU", true, false),
        (Global, "3", GoPane(Routes), "pane_routes", "Routes", true, false),
        (Global, "4", GoPane(Chat), "pane_chat", "Chat", true, false),
        (Global, "5", GoPane(Bench), "pane_bench", "Bench", true, false),
        (Global, "6", GoPane(Logs), "pane_logs", "Logs", true, false),
        (Global, "7", GoPane(Cluster), "pane_cluster", "Cluster", true, false),
        (Global, "8", GoPane(Traffic), "pane_traffic", "Traffic", true, false),
        (Global, "9", GoPane(Models), "pane_models", "Models", true, false),
        (In(Servers), "s", Start, "start", "start the selected server", true, true),
        (In(Servers), "x", Stop, "stop", "stop the selected server (asks first)", true, true),
        (In(Servers), "r", Restart, "restart", "restart the selected server", true, true),
        (In(Servers), "l", ShowLogs, "logs", "the selected server's log", true, true),
        (In(Servers), "enter", ShowLogs, "logs", "the selected server's log", false, false),
        (In(Cluster), "s", Start, "start", "start the selected profile on its cluster", true, true),
        (In(Cluster), "x", Stop, "stop", "stop the selected profile's job (asks first)", true, true),
        (In(Cluster), "r", Restart, "restart", "restart the selected profile's job", true, true),
        (In(Cluster), "l", ShowLogs, "logs", "the selected profile's job log", true, true),
        (In(Cluster), "enter", ShowLogs, "logs", "the selected profile's job log", false, false),
        (In(Routes), "p", Probe, "probe", "probe the selected route now", true, true),
        (In(Routes), "c", ChatRoute, "chat_route", "chat with the selected route", true, true),
        (In(Routes), "b", BenchRoute, "bench_route", "load-test the selected route", true, true),
        (In(Chat), "i", FocusInput, "focus_input", "type a message (enter sends, alt-enter: new line)", true, true),
        (In(Chat), "enter", FocusInput, "focus_input", "type a message", false, false),
        (In(Chat), "]", NextRoute, "next_route", "next route", true, true),
        (In(Chat), "[", PrevRoute, "prev_route", "previous route", true, false),
        (In(Chat), "e", Settings, "settings", "system prompt and parameters", true, true),
        (In(Chat), "w", Save, "save", "save the conversation as Markdown", true, true),
        (In(Chat), "n", NewChat, "new_chat", "new conversation", true, true),
        (In(Bench), "r", Run, "run", "run the load test (esc stops it)", true, true),
        (In(Bench), "enter", Edit, "edit", "edit the selected field", true, true),
        (In(Bench), "+", More, "more", "more load while running, else a larger value", true, true),
        (In(Bench), "=", More, "more", "more load", false, false),
        (In(Bench), "-", Less, "less", "less load while running, else a smaller value", true, true),
        (In(Bench), "h", Left, "left", "previous choice", true, false),
        (In(Bench), "left", Left, "left", "previous choice", false, false),
        (In(Bench), "l", Right, "right", "next choice", true, false),
        (In(Bench), "right", Right, "right", "next choice", false, false),
        (In(Bench), "w", Save, "save", "save the result as JSON", true, true),
        (In(Bench), "b", Baseline, "baseline", "keep the result as the baseline to compare with", true, true),
        (In(Traffic), "enter", Open, "open", "open the selected request: its attempts and where its time went", true, true),
        (In(Traffic), "p", Pause, "pause", "pause the list (the counters go on); again to go live", true, true),
        (In(Traffic), "c", ChatRoute, "chat_route", "chat with the selected request's route", true, true),
        (In(Traffic), "b", BenchRoute, "bench_route", "load-test the selected request's route", true, true),
        (In(Traffic), "]", NextServer, "next_server", "next gateway", true, true),
        (In(Traffic), "[", PrevServer, "prev_server", "previous gateway", true, false),
        (In(Models), "enter", Open, "open", "launch the selected model: a form with the fit estimate (enter edits a field)", true, true),
        (In(Models), "s", Start, "start", "start the launch form's server", true, true),
        (In(Models), "w", Save, "save", "keep the launch form as a profile (servers.d/NAME.yaml)", true, true),
        (In(Models), "r", Rescan, "rescan", "rescan the caches and folders for models", true, true),
        (In(Logs), "f", Follow, "follow", "follow the log", true, true),
        (In(Logs), "w", Wrap, "wrap", "wrap long lines", true, true),
        (In(Logs), "]", NextServer, "next_server", "next server", true, true),
        (In(Logs), "[", PrevServer, "prev_server", "previous server", true, false),
    ]
};

impl KeyMap {
    pub fn defaults() -> Self {
        KeyMap {
            bindings: DEFAULTS
                .iter()
                .map(|&(ctx, key, cmd, name, help, primary, hint)| Binding {
                    ctx,
                    key: KeySpec::parse(key).expect("a valid built-in key"),
                    cmd,
                    name,
                    help,
                    primary,
                    hint,
                })
                .collect(),
            hidden: Vec::new(),
        }
    }

    /// Leaves `cmds` out of the help and the hint bar; their keys still answer (with why
    /// they are refused).
    pub fn hide(&mut self, cmds: &[Cmd]) {
        self.hidden.extend_from_slice(cmds);
    }

    /// Every name `tui.keys` takes, in table order, once each.
    pub fn command_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for b in &self.bindings {
            if !names.contains(&b.name) {
                names.push(b.name);
            }
        }
        names
    }

    /// The defaults with `tui.keys` applied; the first problem is the error.
    pub fn with_overrides(keys: &IndexMap<String, String>) -> Result<Self, KeyError> {
        let (m, mut problems) = Self::checked(keys);
        match problems.is_empty() {
            true => Ok(m),
            false => Err(problems.remove(0)),
        }
    }

    /// Every problem of a `tui.keys` map, for the config's validation: unknown names, keys
    /// that are not keys, multiplexer prefixes, and clashes where both bindings apply.
    pub fn problems(keys: &IndexMap<String, String>) -> Vec<KeyError> {
        Self::checked(keys).1
    }

    /// Each named command's main key (in every pane that has it) is replaced; alternates,
    /// such as the arrows beside j/k, stay.
    fn checked(keys: &IndexMap<String, String>) -> (Self, Vec<KeyError>) {
        let mut problems = Vec::new();
        let mut err = |name: &str, on_key: bool, message: String| {
            problems.push(KeyError {
                name: name.to_string(),
                on_key,
                message,
            })
        };
        let mut m = Self::defaults();
        let known = m.command_names();
        for (name, spec) in keys {
            if !known.contains(&name.as_str()) {
                err(
                    name,
                    true,
                    format!("unknown command `{name}` (commands: {})", known.join(", ")),
                );
                continue;
            }
            let key = match KeySpec::parse(spec) {
                Ok(k) if k.clashes_with_multiplexer() => {
                    err(
                        name,
                        false,
                        format!("`{spec}` is the prefix key of tmux or screen; pick another"),
                    );
                    continue;
                }
                Ok(k) => k,
                Err(e) => {
                    err(name, false, e);
                    continue;
                }
            };
            for b in m
                .bindings
                .iter_mut()
                .filter(|b| b.name == name && b.primary)
            {
                b.key = key;
            }
        }
        let changed = |b: &Binding| b.primary && keys.contains_key(b.name);
        for (i, a) in m.bindings.iter().enumerate() {
            for b in &m.bindings[i + 1..] {
                let overlap = a.ctx == b.ctx || a.ctx == Ctx::Global || b.ctx == Ctx::Global;
                if !overlap || a.key != b.key || a.cmd == b.cmd || !(changed(a) || changed(b)) {
                    continue;
                }
                let (x, y) = if changed(a) { (a, b) } else { (b, a) };
                err(
                    x.name,
                    false,
                    format!(
                        "`{}` is already the key of `{}` ({})",
                        x.key.label(),
                        y.name,
                        match y.ctx {
                            Ctx::Global => "everywhere".to_string(),
                            Ctx::In(p) => format!("{} pane", p.title()),
                        }
                    ),
                );
            }
        }
        (m, problems)
    }

    /// The pane's own binding first, then the global one; `is` says whether a key is the one
    /// pressed (the console compares terminal events, tests compare specs).
    pub fn find(&self, ctx: Ctx, is: impl Fn(&KeySpec) -> bool) -> Option<Cmd> {
        let find = |c: Ctx| {
            self.bindings
                .iter()
                .find(|b| b.ctx == c && is(&b.key))
                .map(|b| b.cmd)
        };
        find(ctx).or_else(|| find(Ctx::Global))
    }

    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// Help lines for a pane: its own keys, then the global ones.
    pub fn help(&self, ctx: Ctx) -> Vec<(String, &'static str)> {
        let mut out: Vec<(String, &'static str)> = Vec::new();
        for c in [ctx, Ctx::Global] {
            for b in self
                .bindings
                .iter()
                .filter(|b| b.ctx == c && b.primary && !self.hidden.contains(&b.cmd))
            {
                // The pane keys read better as one line.
                if let Cmd::GoPane(p) = b.cmd {
                    if p == PANES[0] {
                        out.push((format!("1-{}", PANES.len()), panes_line()));
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
            for b in self
                .bindings
                .iter()
                .filter(|b| b.ctx == c && b.hint && !self.hidden.contains(&b.cmd))
            {
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
                    Cmd::NextServer if ctx == Ctx::In(Pane::Traffic) => "gateway",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_binding_has_a_name_that_remapping_reaches() {
        let d = KeyMap::defaults();
        assert!(d.bindings().iter().all(|b| !b.name.is_empty()));
        for name in d.command_names() {
            let mut o = IndexMap::new();
            o.insert(name.to_string(), "f12".to_string());
            let m = KeyMap::with_overrides(&o).unwrap_or_else(|e| panic!("{name}: {e}"));
            let f12 = KeySpec::parse("f12").unwrap();
            for b in d.bindings().iter().filter(|b| b.name == name && b.primary) {
                assert_eq!(
                    m.find(b.ctx, |k| *k == f12),
                    Some(b.cmd),
                    "{name} in {:?}",
                    b.ctx
                );
            }
        }
    }

    #[test]
    fn save_moves_in_chat_and_bench_and_alternates_stay() {
        let mut o = IndexMap::new();
        o.insert("save".to_string(), "W".to_string());
        o.insert("down".to_string(), "ctrl-n".to_string());
        let m = KeyMap::with_overrides(&o).unwrap();
        let is = |s: &str| {
            let k = KeySpec::parse(s).unwrap();
            move |x: &KeySpec| *x == k
        };
        assert_eq!(m.find(Ctx::In(Pane::Chat), is("W")), Some(Cmd::Save));
        assert_eq!(m.find(Ctx::In(Pane::Bench), is("W")), Some(Cmd::Save));
        assert_eq!(m.find(Ctx::In(Pane::Bench), is("w")), None);
        assert_eq!(m.find(Ctx::In(Pane::Logs), is("ctrl-n")), Some(Cmd::Down));
        assert_eq!(m.find(Ctx::In(Pane::Logs), is("down")), Some(Cmd::Down));
    }

    #[test]
    fn every_problem_is_reported_with_its_name() {
        let mut o = IndexMap::new();
        o.insert("nonsense".to_string(), "z".to_string());
        o.insert("stop".to_string(), "ctrl-b".to_string());
        o.insert("probe".to_string(), "sx".to_string());
        o.insert("start".to_string(), "x".to_string());
        let p = KeyMap::problems(&o);
        let names: Vec<(&str, bool)> = p.iter().map(|e| (e.name.as_str(), e.on_key)).collect();
        assert_eq!(
            names,
            [
                ("nonsense", true),
                ("stop", false),
                ("probe", false),
                ("start", false),
                // `x` stops in the Cluster pane too.
                ("start", false)
            ],
            "{p:?}"
        );
        assert!(p[1].message.contains("prefix key of tmux"), "{p:?}");
        assert_eq!(
            p[3].message,
            "`x` is already the key of `stop` (Servers pane)"
        );
    }
}
