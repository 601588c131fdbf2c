//! The Traffic pane's state: the gateways' views as last published, what is selected and
//! opened, and the filter's matching.

/// The Traffic pane: the gateways' views as last published, the gateway shown, the selected
/// request, a paused copy of the list, and the request opened.
#[derive(Debug, Clone, Default)]
pub struct TrafficPane {
    pub views: std::sync::Arc<Vec<crate::traffic::GatewayView>>,
    pub gateway: usize,
    pub selected: usize,
    /// The list as it was when paused (the counters above it go on).
    pub paused: Option<Vec<crate::traffic::Row>>,
    /// The request opened with Enter, by id.
    pub open: Option<u64>,
    /// Per gateway, the event lines already passed on to the console's log.
    pub lines_seen: Vec<u64>,
}

impl TrafficPane {
    pub fn view(&self) -> Option<&crate::traffic::GatewayView> {
        self.views.get(self.gateway)
    }

    /// A route's real traffic over the gateways that carry it (up ones): requests a
    /// second, the share that failed, the highest p99 TTFT.
    pub fn route_traffic(&self, route: &str) -> Option<(f64, f64, Option<f64>)> {
        let each: Vec<_> = self
            .views
            .iter()
            .filter(|v| v.up)
            .filter_map(|v| v.route_traffic(route))
            .collect();
        if each.is_empty() {
            return None;
        }
        let rate: f64 = each.iter().map(|e| e.0).sum();
        let err = each.iter().map(|e| e.0 * e.1).sum::<f64>() / rate.max(f64::MIN_POSITIVE);
        let p99 = each.iter().filter_map(|e| e.2).reduce(f64::max);
        Some((rate, err, p99))
    }

    /// The gateway a server profile runs, by its port.
    pub fn of_server(&self, port: u16) -> Option<&crate::traffic::GatewayView> {
        let suffix = format!(":{port}");
        self.views.iter().find(|v| v.addr.ends_with(&suffix))
    }
}

/// Whether a request matches the Traffic filter: each word must match; `route:`, `model:`,
/// `key:` (or `client:`), `status:` and `stage:` look at that field only, a bare word at any.
pub fn traffic_matches(r: &crate::traffic::Row, filter: &str) -> bool {
    let status = r.status.map(|s| s.to_string()).unwrap_or_default();
    let class = r.class.clone().unwrap_or_default();
    let served = r.served_by.clone().unwrap_or_default();
    filter.split_whitespace().all(|w| {
        let w = w.to_lowercase();
        let has = |field: &str, v: &str| field.to_lowercase().contains(v);
        match w.split_once(':') {
            Some(("route", v)) => has(&r.route, v) || has(&served, v),
            Some(("model", v)) => has(&r.model, v),
            Some(("key" | "client", v)) => has(&r.client, v),
            Some(("status", v)) => has(&status, v) || has(&class, v),
            Some(("stage", v)) => has(&r.stage, v),
            _ => [
                r.route.as_str(),
                &served,
                &r.model,
                &r.client,
                &status,
                &class,
                &r.stage,
                &r.chain,
            ]
            .iter()
            .any(|f| has(f, &w)),
        }
    })
}
