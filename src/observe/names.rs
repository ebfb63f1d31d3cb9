//! Metric names, types and help texts; docs/metrics.md documents each one with its labels.

/// Statements completed, by cluster, node, role and kind.
pub const QUERIES: &str = "switchyard_queries_total";
/// Routed client round trips that executed something, by the reason that decided the route.
pub const ROUTE_DECISIONS: &str = "switchyard_route_decisions_total";
/// Errors the front ends sent to clients, by kind.
pub const ERRORS: &str = "switchyard_errors_total";
/// Round-trip time of statements through the proxy, by role.
pub const QUERY_DURATION: &str = "switchyard_query_duration_seconds";
/// Clients connected now, by protocol.
pub const CLIENTS: &str = "switchyard_clients_connected";
/// Server connections in the pools, by node and state (idle, in_use).
pub const POOL_CONNECTIONS: &str = "switchyard_pool_connections";
/// Most server connections a node's pools may open.
pub const POOL_MAX: &str = "switchyard_pool_max_connections";
/// Checkouts waiting for a busy pool now.
pub const POOL_WAITING: &str = "switchyard_pool_waiting_clients";
/// Time checkouts waited for a busy pool.
pub const POOL_WAIT: &str = "switchyard_pool_wait_seconds";
/// Replica lag in WAL bytes (PostgreSQL).
pub const LAG_BYTES: &str = "switchyard_replica_lag_bytes";
/// Replica lag in GTID transactions (MySQL).
pub const LAG_TRANSACTIONS: &str = "switchyard_replica_lag_transactions";
/// Replica replay delay in seconds.
pub const LAG_SECONDS: &str = "switchyard_replica_lag_seconds";
/// Node health, one series per state (1 for the current one).
pub const NODE_STATE: &str = "switchyard_node_state";
/// Node role, one series per role (1 for the current one).
pub const NODE_ROLE: &str = "switchyard_node_role";
/// 1 while a node takes new work in its role.
pub const NODE_SERVING: &str = "switchyard_node_serving";
/// 1 while the cluster is ready (what /ready reports for it).
pub const CLUSTER_READY: &str = "switchyard_cluster_ready";
/// Failovers the proxy ran, by result.
pub const FAILOVERS: &str = "switchyard_failovers_total";
/// Node and cluster state changes, by event.
pub const STATE_CHANGES: &str = "switchyard_state_changes_total";

/// Metric types as Prometheus names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Buckets, sum and count.
    Histogram,
}

/// Every metric: name, type and help text (the `# HELP` line).
pub const ALL: &[(&str, MetricType, &str)] = &[
    (
        QUERIES,
        MetricType::Counter,
        "Statements completed through the proxy, by node, role and kind (read, write, transaction, other).",
    ),
    (
        ROUTE_DECISIONS,
        MetricType::Counter,
        "Client round trips that executed statements, by the reason that decided their route.",
    ),
    (
        ERRORS,
        MetricType::Counter,
        "Errors switchyard itself sent to clients, by kind.",
    ),
    (
        QUERY_DURATION,
        MetricType::Histogram,
        "Time from sending a client's round trip to a server until its last reply, by role.",
    ),
    (
        CLIENTS,
        MetricType::Gauge,
        "Client connections open now, by protocol.",
    ),
    (
        POOL_CONNECTIONS,
        MetricType::Gauge,
        "Server connections open in the node's pools, by state (idle, in_use).",
    ),
    (
        POOL_MAX,
        MetricType::Gauge,
        "Most server connections the node's pools may open (pool_size per user and database).",
    ),
    (
        POOL_WAITING,
        MetricType::Gauge,
        "Checkouts waiting now for a free connection of the node's pools.",
    ),
    (
        POOL_WAIT,
        MetricType::Histogram,
        "Time checkouts that found the pool busy waited (served or timed out).",
    ),
    (
        LAG_BYTES,
        MetricType::Gauge,
        "Replica replay lag behind the primary in WAL bytes (PostgreSQL); NaN while unknown.",
    ),
    (
        LAG_TRANSACTIONS,
        MetricType::Gauge,
        "Replica lag behind the primary in GTID transactions (MySQL); NaN while unknown.",
    ),
    (
        LAG_SECONDS,
        MetricType::Gauge,
        "Replica replay delay in seconds; +Inf while replication is stopped, NaN while unknown.",
    ),
    (
        NODE_STATE,
        MetricType::Gauge,
        "Node health: 1 for the current state (up, down, unknown), 0 for the others.",
    ),
    (
        NODE_ROLE,
        MetricType::Gauge,
        "Node role: 1 for the current role (primary, replica, unknown), 0 for the others.",
    ),
    (
        NODE_SERVING,
        MetricType::Gauge,
        "1 while the node takes new work: the cluster's primary, or a replica serving reads.",
    ),
    (
        CLUSTER_READY,
        MetricType::Gauge,
        "1 while the cluster has a primary or a replica serving reads (as /ready reports).",
    ),
    (
        FAILOVERS,
        MetricType::Counter,
        "Failovers run by switchyard, by result (started, succeeded, failed).",
    ),
    (
        STATE_CHANGES,
        MetricType::Counter,
        "Node and cluster state changes, by event (node_down, role_changed, fenced, ...).",
    ),
];

/// Upper bounds of the query duration buckets, in seconds.
pub const QUERY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Upper bounds of the pool wait buckets, in seconds.
pub const WAIT_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
