//! Everything the console shows, as plain data: `update` changes it, the view draws it.
pub use super::bench_state::{
    BenchForm, BenchView, FindMaxRun, RunningBench, BENCH_FIELDS, DEFAULT_SLO, WORKLOADS,
};
use super::keymap::KeyMap;
pub use super::servers_state::ServersView;
pub use super::traffic_state::{traffic_matches, TrafficPane};
pub use crate::config::keymap::{Pane, PANES};
use crate::session::{ChatParams, Conversation};
use crate::supervisor::logs::LogRing;
use crate::supervisor::ServerStatus;
use crate::telemetry::routes::RouteTable;
use crate::telemetry::sampler::{GpuView, HostView};
use ratatui_textarea::TextArea;
use std::collections::{BTreeMap, BTreeSet};

/// What takes the keys first.
#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    None,
    Help,
    /// Quitting while servers this console started still run: y stops them, l leaves them.
    Quit {
        running: Vec<String>,
    },
    ConfirmStop(String),
}

/// A line being typed somewhere.
#[derive(Debug, Clone, PartialEq)]
pub enum Typing {
    None,
    Command(String),
    Filter(String),
    /// The chat message box has the keys.
    ChatMessage,
    /// A chat setting: (field, text).
    ChatSetting(usize, String),
    /// A bench form field: (field, text).
    BenchField(usize, String),
    /// A launch form field (Models pane): (field, text).
    LaunchField(usize, String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
    /// Unix seconds after which it goes.
    pub until: f64,
}

/// The Cluster pane: each configured cluster's last reading, and the selected job row.
#[derive(Debug, Clone, Default)]
pub struct ClusterPane {
    pub views: Vec<crate::cluster::ClusterView>,
    pub selected: usize,
}

/// A row of the Cluster pane's job table: one of our cluster profiles (with its current job,
/// if any), or a job that is not a profile's current one (others', or our older runs).
#[derive(Debug, Clone, Copy)]
pub struct JobRow<'a> {
    pub cluster: &'a str,
    /// Our profile, when the row is one (the keys act on it).
    pub profile: Option<&'a ServerStatus>,
    pub job: Option<&'a crate::cluster::ClusterJob>,
}

#[derive(Debug, Clone)]
pub struct LogsView {
    pub rings: BTreeMap<String, LogRing>,
    pub server: Option<String>,
    pub follow: bool,
    pub wrap: bool,
    /// Lines scrolled back from the end when not following.
    pub back: usize,
    pub cap: usize,
}

#[derive(Debug, Clone, Default)]
pub struct RoutesView {
    pub table: RouteTable,
    pub selected: usize,
}

/// The answer being streamed.
#[derive(Debug, Clone, PartialEq)]
pub struct Streaming {
    pub id: u64,
    pub user: String,
    pub text: String,
    pub route: String,
    pub served_by: Option<crate::provider::router::ServedBy>,
    pub attempts: Vec<crate::provider::router::Attempt>,
    /// Time to the first token, as the streaming task measured it.
    pub ttft_ms: Option<f64>,
}

pub const CHAT_SETTINGS: [&str; 3] = ["system prompt", "temperature", "max tokens"];

pub struct ChatView {
    pub routes: Vec<String>,
    pub route: usize,
    pub conv: Conversation,
    pub params: ChatParams,
    pub input: TextArea<'static>,
    pub streaming: Option<Streaming>,
    pub next_id: u64,
    /// Lines scrolled back from the end of the conversation.
    pub back: usize,
    pub settings_open: bool,
    pub settings_field: usize,
}

pub struct App {
    pub pane: Pane,
    pub history: Vec<Pane>,
    pub overlay: Overlay,
    pub typing: Typing,
    pub filters: BTreeMap<Pane, String>,
    pub keys: KeyMap,
    pub read_only: bool,
    /// `--no-autostart`: profiles with `autostart: true` are left stopped.
    pub no_autostart: bool,
    /// `NO_COLOR` is set: the screen keeps its attributes (bold, reverse) and drops colours.
    pub no_color: bool,
    /// Servers this console started because their profile says `autostart: true`.
    pub autostarted: Vec<String>,
    /// Unix seconds, as of the last tick.
    pub now: f64,
    pub config_name: String,
    pub host: HostView,
    pub gpu: GpuView,
    pub servers: ServersView,
    pub logs: LogsView,
    pub routes: RoutesView,
    pub chat: ChatView,
    pub bench: BenchView,
    pub cluster: ClusterPane,
    pub traffic: TrafficPane,
    pub models: super::models_state::ModelsPane,
    pub notice: Option<Notice>,
    /// Panics of background tasks since the console started (shown in the help screen).
    pub engine_errors: Vec<String>,
    /// Set when the console should end.
    pub quit: bool,
}

impl App {
    pub fn new(
        mut keys: KeyMap,
        routes: Vec<String>,
        default_route: &str,
        read_only: bool,
        log_lines: usize,
    ) -> Self {
        let mut input = TextArea::default();
        input.set_placeholder_text(
            "Type a message · enter sends · alt-enter: new line · esc: leave",
        );
        let route = routes.iter().position(|r| r == default_route).unwrap_or(0);
        if read_only {
            keys.hide(&crate::config::keymap::READ_ONLY_REFUSED);
        }
        App {
            pane: Pane::Servers,
            history: Vec::new(),
            overlay: Overlay::None,
            typing: Typing::None,
            filters: BTreeMap::new(),
            keys,
            read_only,
            no_autostart: false,
            no_color: false,
            autostarted: Vec::new(),
            now: crate::time::unix_now(),
            config_name: String::new(),
            host: HostView::default(),
            gpu: GpuView::default(),
            servers: ServersView::default(),
            logs: LogsView {
                rings: BTreeMap::new(),
                server: None,
                follow: true,
                wrap: false,
                back: 0,
                cap: log_lines.max(1),
            },
            routes: RoutesView::default(),
            chat: ChatView {
                routes: routes.clone(),
                route,
                conv: Conversation::default(),
                params: ChatParams::default(),
                input,
                streaming: None,
                next_id: 1,
                back: 0,
                settings_open: false,
                settings_field: 0,
            },
            bench: BenchView {
                form: BenchForm {
                    route,
                    open: false,
                    ramp: false,
                    concurrency: 4,
                    rate: 5.0,
                    by_duration: false,
                    requests: 100,
                    duration_s: 30.0,
                    input_len: 256,
                    output_len: 64,
                    compare: None,
                    route_chosen: false,
                    workload: 0,
                    find_max: false,
                    soak: false,
                    slo: DEFAULT_SLO.into(),
                },
                field: 0,
                running: None,
                results: Vec::new(),
                baseline: None,
                next_id: 1,
                find_max: None,
            },
            cluster: ClusterPane::default(),
            traffic: TrafficPane::default(),
            models: Default::default(),
            notice: None,
            engine_errors: Vec::new(),
            quit: false,
        }
    }

    pub fn filter(&self) -> Option<&str> {
        self.filters
            .get(&self.pane)
            .map(String::as_str)
            .filter(|f| !f.is_empty())
    }

    /// Servers this console started that are still running (asked about on quit).
    pub fn running_started_here(&self) -> Vec<String> {
        self.servers
            .list
            .iter()
            .filter(|s| s.is_running() && self.servers.started_here.contains(&s.name))
            .map(|s| s.name.clone())
            .collect()
    }

    /// Bytes of GPU memory held by a server's processes, over every GPU source.
    pub fn server_gpu_bytes(&self, name: &str) -> Option<u64> {
        let mut total = None;
        for s in &self.gpu.samples {
            for d in &s.devices {
                for p in d
                    .processes
                    .iter()
                    .filter(|p| p.server.as_deref() == Some(name))
                {
                    *total.get_or_insert(0) += p.used_memory_bytes.unwrap_or(0);
                }
            }
        }
        total
    }

    /// Servers in the order shown, after the filter.
    pub fn visible_servers(&self) -> Vec<&ServerStatus> {
        let f = self.filters.get(&Pane::Servers).map(|s| s.to_lowercase());
        self.servers
            .list
            .iter()
            .filter(|s| {
                f.as_deref().is_none_or(|f| {
                    s.name.to_lowercase().contains(f)
                        || s.state.as_str().contains(f)
                        || s.model.as_deref().unwrap_or("").to_lowercase().contains(f)
                        || s.route.as_deref().unwrap_or("").to_lowercase().contains(f)
                })
            })
            .collect()
    }

    /// The Cluster pane's job rows: our cluster profiles first (in the config's order), then
    /// every other job, newest first; after the filter.
    pub fn cluster_rows(&self) -> Vec<JobRow<'_>> {
        let f = self.filters.get(&Pane::Cluster).map(|s| s.to_lowercase());
        let mut rows = Vec::new();
        let mut shown: BTreeSet<&str> = BTreeSet::new();
        for s in self.servers.list.iter().filter(|s| s.cluster.is_some()) {
            let cluster = s.cluster.as_deref().unwrap_or("");
            let job = s.job.as_deref().and_then(|id| {
                self.cluster
                    .views
                    .iter()
                    .filter(|v| v.cluster == cluster)
                    .flat_map(|v| v.jobs.iter())
                    .find(|j| j.id == id)
            });
            if let Some(j) = job {
                shown.insert(j.id.as_str());
            }
            rows.push(JobRow {
                cluster,
                profile: Some(s),
                job,
            });
        }
        for v in &self.cluster.views {
            let mut others: Vec<&crate::cluster::ClusterJob> = v
                .jobs
                .iter()
                .filter(|j| !shown.contains(j.id.as_str()))
                .collect();
            others.sort_by_key(|j| std::cmp::Reverse(j.start_ms));
            rows.extend(others.into_iter().map(|j| JobRow {
                cluster: &v.cluster,
                profile: None,
                job: Some(j),
            }));
        }
        rows.retain(|r| {
            f.as_deref().is_none_or(|f| {
                r.profile.is_some_and(|p| p.name.to_lowercase().contains(f))
                    || r.job.is_some_and(|j| {
                        j.id.to_lowercase().contains(f)
                            || j.status.as_str().to_lowercase().contains(f)
                            || j.entrypoint.to_lowercase().contains(f)
                    })
            })
        });
        rows
    }

    pub fn visible_routes(&self) -> Vec<&crate::telemetry::routes::RouteHealth> {
        let f = self.filters.get(&Pane::Routes).map(|s| s.to_lowercase());
        self.routes
            .table
            .routes
            .iter()
            .filter(|r| {
                f.as_deref().is_none_or(|f| {
                    r.route.to_lowercase().contains(f)
                        || r.state().as_str().contains(f)
                        || r.kind.as_str().contains(f)
                })
            })
            .collect()
    }

    /// The Traffic list as shown: the selected gateway's requests (or the paused copy),
    /// newest first, after the filter.
    pub fn traffic_rows(&self) -> Vec<&crate::traffic::Row> {
        let f = self.filters.get(&Pane::Traffic).map(String::as_str);
        let keep = |r: &&crate::traffic::Row| f.is_none_or(|f| traffic_matches(r, f));
        match (&self.traffic.paused, self.traffic.view()) {
            (Some(rows), _) => rows.iter().filter(keep).collect(),
            (None, Some(v)) => v.rows().filter(keep).collect(),
            (None, None) => Vec::new(),
        }
    }

    /// The server whose log the Logs pane shows.
    pub fn log_server(&self) -> Option<String> {
        self.logs.server.clone().or_else(|| {
            let running = self.servers.list.iter().find(|s| s.is_running());
            running
                .or(self.servers.list.first())
                .map(|s| s.name.clone())
        })
    }

    pub fn chat_route(&self) -> Option<&str> {
        self.chat.routes.get(self.chat.route).map(String::as_str)
    }

    pub fn notify(&mut self, text: impl Into<String>, error: bool) {
        self.notice = Some(Notice {
            text: text.into(),
            error,
            until: self.now + if error { 8.0 } else { 4.0 },
        });
    }
}
