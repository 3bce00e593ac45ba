//! Settings: each can be given as a flag, an environment variable or a key of a TOML file
//! (`--config`), in that order of precedence, and named alike in all three: `--user-domain`,
//! `MIXD_USER_DOMAINS`, `user_domains`. The secret is never printed or logged.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, ValueEnum};
use serde::Deserialize;

use crate::store::sqlite::Durability;
use crate::store::Database;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The options as given; everything optional so that the sources can be layered.
#[derive(Debug, Default, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// TOML file with any of the settings below (keys: server, jid, secret, database,
    /// user_domains, log_format, durability, keepalive, max_message_bytes, max_members,
    /// max_groups_per_creator, max_resources_per_participant, keep_archive, max_stanza_bytes,
    /// max_stanza_depth, max_outbox_bytes, write_timeout, payload_namespaces, message_burst,
    /// messages_per_minute, signals_per_minute, channels_per_hour, joins_per_minute,
    /// adds_per_hour, history_burst, history_per_minute, control_socket, log_level, metrics;
    /// a [bootstrap] table).
    #[arg(long, env = "MIXD_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address of the XMPP server's component listener [default: 127.0.0.1:5347].
    #[arg(long, env = "MIXD_SERVER", value_name = "HOST:PORT")]
    pub server: Option<String>,

    /// The component's JID, the domain channels live under, e.g. mix.example.org.
    #[arg(long, env = "MIXD_JID", value_name = "DOMAIN")]
    pub jid: Option<String>,

    /// Shared secret of the component, as configured on the XMPP server.
    #[arg(
        long,
        env = "MIXD_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub secret: Option<String>,

    /// SQLite database file, or a PostgreSQL URL (postgres://user@host:port/database)
    /// [default: mixd.db].
    #[arg(long, env = "MIXD_DATABASE", value_name = "FILE|URL")]
    pub database: Option<PathBuf>,

    /// A domain whose users may create channels; repeat for several (the environment variable
    /// takes a comma-separated list) [default: the component's parent domain].
    #[arg(
        long = "user-domain",
        env = "MIXD_USER_DOMAINS",
        value_delimiter = ',',
        value_name = "DOMAIN"
    )]
    #[serde(default, alias = "user-domains")]
    pub user_domains: Vec<String>,

    /// Log format [default: human].
    #[arg(long, env = "MIXD_LOG_FORMAT", value_enum)]
    #[serde(alias = "log-format")]
    pub log_format: Option<LogFormat>,

    /// normal: a commit survives a crash of mixd; full: also a power cut [default: normal].
    #[arg(long, env = "MIXD_DURABILITY", value_enum)]
    pub durability: Option<Durability>,

    /// Seconds of silence from the server after which mixd pings it [default: 60].
    #[arg(long, env = "MIXD_KEEPALIVE", value_name = "SECONDS")]
    pub keepalive: Option<u64>,

    /// Largest message accepted, in bytes of XML payload [default: 65536].
    #[arg(long, env = "MIXD_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    #[serde(alias = "max-message-bytes")]
    pub max_message_bytes: Option<usize>,

    /// Participants per group; a group's owner may set a lower limit [default: 10000].
    #[arg(long, env = "MIXD_MAX_MEMBERS", value_name = "N")]
    #[serde(alias = "max-members")]
    pub max_members: Option<usize>,

    /// Groups one user may have created and not deleted, 0 for no limit [default: 1000].
    #[arg(long, env = "MIXD_MAX_GROUPS_PER_CREATOR", value_name = "N")]
    #[serde(alias = "max-groups-per-creator")]
    pub max_groups_per_creator: Option<usize>,

    /// Clients (resources) one participant may have online in one channel; presence beyond
    /// it is refused with resource-constraint [default: 64].
    #[arg(long, env = "MIXD_MAX_RESOURCES_PER_PARTICIPANT", value_name = "N")]
    #[serde(alias = "max-resources-per-participant")]
    pub max_resources_per_participant: Option<usize>,

    /// Keep a deleted group's archive in the database (for the operator; no client can read
    /// it) instead of erasing it with the group [default: false].
    #[arg(long, env = "MIXD_KEEP_ARCHIVE", value_name = "BOOL")]
    #[serde(alias = "keep-archive")]
    pub keep_archive: Option<bool>,

    /// Largest stanza read from the server, in bytes of XML; a larger one is skipped unread
    /// and its sender gets `policy-violation` [default: 262144, or max_message_bytes + 65536
    /// if that is larger].
    #[arg(long, env = "MIXD_MAX_STANZA_BYTES", value_name = "BYTES")]
    #[serde(alias = "max-stanza-bytes")]
    pub max_stanza_bytes: Option<usize>,

    /// Deepest nesting of elements in a stanza read from the server (the stanza itself is
    /// level 1); a deeper one is skipped and its sender gets `policy-violation`; 8 to 128
    /// [default: 32].
    #[arg(long, env = "MIXD_MAX_STANZA_DEPTH", value_name = "LEVELS")]
    #[serde(alias = "max-stanza-depth")]
    pub max_stanza_depth: Option<usize>,

    /// Bytes of outbound stanzas queued for the server before mixd stops taking new stanzas
    /// until the server has read some [default: 33554432].
    #[arg(long, env = "MIXD_MAX_OUTBOX_BYTES", value_name = "BYTES")]
    #[serde(alias = "max-outbox-bytes")]
    pub max_outbox_bytes: Option<usize>,

    /// Seconds the server may read nothing from mixd while stanzas wait before mixd drops the
    /// link and connects again, keeping what was queued [default: 30].
    #[arg(long, env = "MIXD_WRITE_TIMEOUT", value_name = "SECONDS")]
    #[serde(alias = "write-timeout")]
    pub write_timeout: Option<u64>,

    /// Messages one user (all its clients together) may post at once before the sustained
    /// rate applies; beyond it, posts are refused with policy-violation. 0 turns the message
    /// quota off [default: 500].
    #[arg(long, env = "MIXD_MESSAGE_BURST", value_name = "N")]
    #[serde(alias = "message-burst")]
    pub message_burst: Option<u32>,

    /// Messages one user may post per minute, sustained [default: 600, ten a second].
    #[arg(long, env = "MIXD_MESSAGES_PER_MINUTE", value_name = "N")]
    #[serde(alias = "messages-per-minute")]
    pub messages_per_minute: Option<u32>,

    /// Chat states, receipts and markers, reactions and retractions one user may send per
    /// minute, all of them at once at most; beyond, refused with policy-violation; 0 for no
    /// limit [default: 1200, twenty a second].
    #[arg(long, env = "MIXD_SIGNALS_PER_MINUTE", value_name = "N")]
    #[serde(alias = "signals-per-minute")]
    pub signals_per_minute: Option<u32>,

    /// Reads of the archive one user may ask for at once (MAM queries, FlyChat history pages,
    /// message look-ups and receipt states) before the sustained rate applies; beyond it,
    /// refused with policy-violation. 0 turns the history quota off [default: 300].
    #[arg(long, env = "MIXD_HISTORY_BURST", value_name = "N")]
    #[serde(alias = "history-burst")]
    pub history_burst: Option<u32>,

    /// Reads of the archive one user may ask for per minute, sustained [default: 600, ten a
    /// second].
    #[arg(long, env = "MIXD_HISTORY_PER_MINUTE", value_name = "N")]
    #[serde(alias = "history-per-minute")]
    pub history_per_minute: Option<u32>,

    /// Channels one user may create per hour, refused beyond with resource-constraint; 0 for
    /// no limit [default: 100].
    #[arg(long, env = "MIXD_CHANNELS_PER_HOUR", value_name = "N")]
    #[serde(alias = "channels-per-hour")]
    pub channels_per_hour: Option<u32>,

    /// Joins (that change something) and join requests one user may make per minute; 0 for
    /// no limit [default: 600].
    #[arg(long, env = "MIXD_JOINS_PER_MINUTE", value_name = "N")]
    #[serde(alias = "joins-per-minute")]
    pub joins_per_minute: Option<u32>,

    /// Users one user may add to groups or invite per hour; 0 for no limit [default: 1000].
    #[arg(long, env = "MIXD_ADDS_PER_HOUR", value_name = "N")]
    #[serde(alias = "adds-per-hour")]
    pub adds_per_hour: Option<u32>,
    /// An application's own XML namespace whose elements participants' messages may carry
    /// as opaque payloads; repeat for several (the environment variable takes a
    /// comma-separated list). Not under urn:xmpp:, jabber:, http://jabber.org/, urn:ietf:,
    /// urn:mixd: and the like [default: none].
    #[arg(
        long = "payload-namespace",
        env = "MIXD_PAYLOAD_NAMESPACES",
        value_delimiter = ',',
        value_name = "NAMESPACE"
    )]
    #[serde(default, alias = "payload-namespaces")]
    pub payload_namespaces: Vec<String>,

    /// Unix socket through which `mixd admin` changes the running service (mode 0600)
    /// [default: beside the database, `.sock` for its extension: mixd.db → mixd.sock].
    #[arg(long, env = "MIXD_CONTROL_SOCKET", value_name = "FILE")]
    #[serde(alias = "control-socket")]
    pub control_socket: Option<PathBuf>,

    /// What to log, as tracing directives (`info`, `debug`, `info,mixd=debug`); MIXD_LOG, if
    /// set, overrides it [default: info].
    #[arg(long, env = "MIXD_LOG_LEVEL", value_name = "DIRECTIVES")]
    #[serde(alias = "log-level")]
    pub log_level: Option<String>,

    /// Serve Prometheus metrics (`/metrics`) and a health check (`/health`) over HTTP on this
    /// address, e.g. 127.0.0.1:9090 [default: off].
    #[arg(long, env = "MIXD_METRICS", value_name = "HOST:PORT")]
    pub metrics: Option<String>,

    /// The REST bootstrap for the FlyChat SDK: the `[bootstrap]` table of the file.
    #[command(flatten)]
    #[serde(default)]
    pub bootstrap: BootstrapOptions,
}

/// The FlyChat SDK's REST bootstrap (`src/bootstrap/`), off unless `listen` is set. In the
/// file, the keys of a `[bootstrap]` table: listen, base_path, xmpp_host, xmpp_port_web, c2s,
/// token_lifetime, media_dir, media_max_bytes.
#[derive(Debug, Default, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapOptions {
    /// Address the bootstrap's HTTP listener binds, e.g. 127.0.0.1:8080 [default: off].
    #[arg(long, env = "MIXD_BOOTSTRAP_LISTEN", value_name = "HOST:PORT")]
    #[serde(rename = "listen")]
    pub bootstrap_listen: Option<std::net::SocketAddr>,

    /// Path the routes sit under, the SDK's apiBaseUrl path [default: /api/v1].
    #[arg(long, env = "MIXD_BOOTSTRAP_BASE_PATH", value_name = "PATH")]
    #[serde(rename = "base_path")]
    pub bootstrap_base_path: Option<String>,

    /// The XMPP domain SDK users log in at, also the WebSocket's host name [default: the
    /// first user domain].
    #[arg(long, env = "MIXD_BOOTSTRAP_XMPP_HOST", value_name = "DOMAIN")]
    #[serde(rename = "xmpp_host")]
    pub bootstrap_xmpp_host: Option<String>,

    /// The port of the server's WebSocket (wss, path /websocket) the SDK connects to
    /// [default: 443].
    #[arg(long, env = "MIXD_BOOTSTRAP_XMPP_PORT_WEB", value_name = "PORT")]
    #[serde(rename = "xmpp_port_web")]
    pub bootstrap_xmpp_port_web: Option<u16>,

    /// The XMPP server's client (c2s) port where logins are checked [default: 127.0.0.1:5222].
    #[arg(long, env = "MIXD_BOOTSTRAP_C2S", value_name = "HOST:PORT")]
    #[serde(rename = "c2s")]
    pub bootstrap_c2s: Option<String>,

    /// Seconds a login token stays valid [default: 86400].
    #[arg(long, env = "MIXD_BOOTSTRAP_TOKEN_LIFETIME", value_name = "SECONDS")]
    #[serde(rename = "token_lifetime")]
    pub bootstrap_token_lifetime: Option<u64>,

    /// Directory for the SDK's uploaded media; no media routes without it [default: off].
    #[arg(long, env = "MIXD_BOOTSTRAP_MEDIA_DIR", value_name = "DIR")]
    #[serde(rename = "media_dir")]
    pub bootstrap_media_dir: Option<PathBuf>,

    /// The largest media file accepted, in bytes [default: 104857600, 100 MiB].
    #[arg(long, env = "MIXD_BOOTSTRAP_MEDIA_MAX_BYTES", value_name = "BYTES")]
    #[serde(rename = "media_max_bytes")]
    pub bootstrap_media_max_bytes: Option<u64>,
}

impl BootstrapOptions {
    /// Flags and environment (`self`) over the file; `None` while no listener is set.
    fn resolve(
        self,
        file: BootstrapOptions,
        user_domains: &[String],
    ) -> anyhow::Result<Option<crate::bootstrap::Settings>> {
        let Some(listen) = self.bootstrap_listen.or(file.bootstrap_listen) else {
            return Ok(None);
        };
        let mut base_path = self
            .bootstrap_base_path
            .or(file.bootstrap_base_path)
            .unwrap_or_else(|| "/api/v1".into());
        if !base_path.is_empty() && !base_path.starts_with('/') {
            base_path.insert(0, '/');
        }
        let base_path = base_path.trim_end_matches('/').to_owned();
        let xmpp_host = self
            .bootstrap_xmpp_host
            .or(file.bootstrap_xmpp_host)
            .or_else(|| user_domains.first().cloned())
            .unwrap_or_default();
        if jid::BareJid::new(&xmpp_host).map_or(true, |j| j.node().is_some()) {
            bail!("bootstrap xmpp_host '{xmpp_host}' must be a domain such as example.org");
        }
        let c2s = self
            .bootstrap_c2s
            .or(file.bootstrap_c2s)
            .unwrap_or_else(|| "127.0.0.1:5222".into());
        if !c2s.contains(':') {
            bail!("bootstrap c2s '{c2s}' must be HOST:PORT");
        }
        let lifetime = self
            .bootstrap_token_lifetime
            .or(file.bootstrap_token_lifetime)
            .unwrap_or(86_400);
        if lifetime == 0 {
            bail!("bootstrap token_lifetime must be at least 1 second");
        }
        let media_max_bytes = self
            .bootstrap_media_max_bytes
            .or(file.bootstrap_media_max_bytes)
            .unwrap_or(100 * 1024 * 1024);
        if media_max_bytes == 0 {
            bail!("bootstrap media_max_bytes must be at least 1");
        }
        Ok(Some(crate::bootstrap::Settings {
            listen,
            base_path,
            xmpp_host,
            xmpp_port_web: self
                .bootstrap_xmpp_port_web
                .or(file.bootstrap_xmpp_port_web)
                .unwrap_or(443),
            c2s,
            token_lifetime: std::time::Duration::from_secs(lifetime),
            media_dir: self.bootstrap_media_dir.or(file.bootstrap_media_dir),
            media_max_bytes,
        }))
    }
}

/// The settings mixd runs with, every one resolved.
#[derive(Clone)]
pub struct Settings {
    pub server: String,
    pub domain: String,
    pub secret: String,
    pub database: Database,
    pub user_domains: Vec<String>,
    pub log_format: LogFormat,
    pub durability: Durability,
    pub max_message_bytes: usize,
    pub keepalive: std::time::Duration,
    pub max_members: usize,
    pub max_groups_per_creator: usize,
    pub max_resources_per_participant: usize,
    pub keep_archive: bool,
    pub max_stanza_bytes: usize,
    pub max_stanza_depth: usize,
    pub max_outbox_bytes: usize,
    pub write_timeout: std::time::Duration,
    pub message_burst: u32,
    pub messages_per_minute: u32,
    pub signals_per_minute: u32,
    pub channels_per_hour: u32,
    pub joins_per_minute: u32,
    pub adds_per_hour: u32,
    pub history_burst: u32,
    pub history_per_minute: u32,
    /// Namespaces of opaque payloads participants' messages may carry (`dialect::payload`).
    pub payload_namespaces: Vec<String>,
    /// Where `mixd admin` reaches the running service (`control.rs`).
    pub control_socket: PathBuf,
    pub log_level: String,
    /// The FlyChat SDK's REST bootstrap, when it is to listen.
    pub bootstrap: Option<crate::bootstrap::Settings>,
    /// Where `/metrics` and `/health` are served, if anywhere.
    pub metrics: Option<SocketAddr>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("server", &self.server)
            .field("domain", &self.domain)
            .field("secret", &"<redacted>")
            .field("database", &self.database)
            .field("user_domains", &self.user_domains)
            .field("log_format", &self.log_format)
            .field("durability", &self.durability)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("keepalive", &self.keepalive)
            .field("max_members", &self.max_members)
            .field("max_groups_per_creator", &self.max_groups_per_creator)
            .field(
                "max_resources_per_participant",
                &self.max_resources_per_participant,
            )
            .field("keep_archive", &self.keep_archive)
            .field("max_stanza_bytes", &self.max_stanza_bytes)
            .field("max_stanza_depth", &self.max_stanza_depth)
            .field("max_outbox_bytes", &self.max_outbox_bytes)
            .field("write_timeout", &self.write_timeout)
            .field("message_burst", &self.message_burst)
            .field("messages_per_minute", &self.messages_per_minute)
            .field("signals_per_minute", &self.signals_per_minute)
            .field("channels_per_hour", &self.channels_per_hour)
            .field("joins_per_minute", &self.joins_per_minute)
            .field("adds_per_hour", &self.adds_per_hour)
            .field("history_burst", &self.history_burst)
            .field("history_per_minute", &self.history_per_minute)
            .field("payload_namespaces", &self.payload_namespaces)
            .field("control_socket", &self.control_socket)
            .field("log_level", &self.log_level)
            .field("bootstrap", &self.bootstrap)
            .field("metrics", &self.metrics)
            .finish()
    }
}

/// Where each setting came from, for `check-config`.
#[derive(Debug)]
pub struct Sources(Vec<(&'static str, String)>);

impl Options {
    /// Layers flags and environment (already in `self`, as clap resolved them) over the file.
    pub fn resolve(self, matches: &ArgMatches) -> anyhow::Result<(Settings, Sources)> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => Options::default(),
        };
        let mut sources = Vec::new();
        let mut origin = |name: &'static str, in_file: bool| {
            let source = match matches.value_source(name) {
                Some(ValueSource::CommandLine) => "flag".to_string(),
                Some(ValueSource::EnvVariable) => "environment".to_string(),
                _ if in_file => format!(
                    "file {}",
                    self.config
                        .as_deref()
                        .map(Path::display)
                        .map(|d| d.to_string())
                        .unwrap_or_default()
                ),
                _ => "default".to_string(),
            };
            sources.push((name, source));
        };
        origin("server", file.server.is_some());
        origin("jid", file.jid.is_some());
        origin("secret", file.secret.is_some());
        origin("database", file.database.is_some());
        origin("user_domains", !file.user_domains.is_empty());
        origin("log_format", file.log_format.is_some());
        origin("durability", file.durability.is_some());
        origin("keepalive", file.keepalive.is_some());
        origin("max_message_bytes", file.max_message_bytes.is_some());
        origin("max_members", file.max_members.is_some());
        origin(
            "max_groups_per_creator",
            file.max_groups_per_creator.is_some(),
        );
        origin(
            "max_resources_per_participant",
            file.max_resources_per_participant.is_some(),
        );
        origin("keep_archive", file.keep_archive.is_some());
        origin("max_stanza_bytes", file.max_stanza_bytes.is_some());
        origin("max_stanza_depth", file.max_stanza_depth.is_some());
        origin("max_outbox_bytes", file.max_outbox_bytes.is_some());
        origin("write_timeout", file.write_timeout.is_some());
        origin("message_burst", file.message_burst.is_some());
        origin("messages_per_minute", file.messages_per_minute.is_some());
        origin("signals_per_minute", file.signals_per_minute.is_some());
        origin("channels_per_hour", file.channels_per_hour.is_some());
        origin("joins_per_minute", file.joins_per_minute.is_some());
        origin("adds_per_hour", file.adds_per_hour.is_some());
        origin("history_burst", file.history_burst.is_some());
        origin("history_per_minute", file.history_per_minute.is_some());
        origin("payload_namespaces", !file.payload_namespaces.is_empty());
        origin("control_socket", file.control_socket.is_some());
        origin("log_level", file.log_level.is_some());
        origin(
            "bootstrap_listen",
            file.bootstrap.bootstrap_listen.is_some(),
        );
        origin("metrics", file.metrics.is_some());

        let server = self
            .server
            .or(file.server)
            .unwrap_or_else(|| "127.0.0.1:5347".into());
        let Some(domain) = self.jid.or(file.jid) else {
            bail!("no component JID: give --jid, MIXD_JID or `jid` in the config file");
        };
        let parsed =
            jid::BareJid::new(&domain).with_context(|| format!("'{domain}' is not a valid JID"))?;
        if parsed.node().is_some() {
            bail!(
                "the component JID must be a bare domain such as mix.example.org, not '{domain}'"
            );
        }
        let domain = parsed.to_string();
        let Some(secret) = self.secret.or(file.secret) else {
            bail!("no shared secret: give --secret, MIXD_SECRET or `secret` in the config file");
        };
        if secret.is_empty() {
            bail!("the shared secret is empty");
        }
        if !server.contains(':') {
            bail!("server '{server}' must be HOST:PORT");
        }
        let mut user_domains = if self.user_domains.is_empty() {
            file.user_domains
        } else {
            self.user_domains
        };
        user_domains.retain(|d| !d.trim().is_empty());
        if user_domains.is_empty() {
            match domain.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => user_domains.push(parent.to_owned()),
                _ => bail!(
                    "no user domain: give --user-domain (the component's domain has no parent)"
                ),
            }
        }
        let max_message_bytes = self
            .max_message_bytes
            .or(file.max_message_bytes)
            .unwrap_or(64 * 1024);
        let mut payload_namespaces = if self.payload_namespaces.is_empty() {
            file.payload_namespaces
        } else {
            self.payload_namespaces
        };
        payload_namespaces.retain(|n| !n.trim().is_empty());
        for namespace in &mut payload_namespaces {
            *namespace = namespace.trim().to_owned();
            if let Some(why) = crate::dialect::payload::unlistable(namespace) {
                bail!("payload_namespaces: {why}");
            }
        }
        let database = self
            .database
            .or(file.database)
            .unwrap_or_else(|| "mixd.db".into());
        let control_socket = self
            .control_socket
            .or(file.control_socket)
            .unwrap_or_else(|| default_control_socket(&database));
        let log_level = self
            .log_level
            .or(file.log_level)
            .unwrap_or_else(|| "info".into());
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&log_level) {
            bail!("log_level '{log_level}': {error}");
        }
        let bootstrap = self.bootstrap.resolve(file.bootstrap, &user_domains)?;
        let metrics = match self.metrics.or(file.metrics) {
            Some(address) => Some(address.parse::<SocketAddr>().with_context(|| {
                format!("metrics '{address}' must be an IP address and port, e.g. 127.0.0.1:9090")
            })?),
            None => None,
        };
        let settings = Settings {
            server,
            domain,
            secret,
            database: database.into(),
            user_domains,
            log_format: self.log_format.or(file.log_format).unwrap_or_default(),
            durability: self.durability.or(file.durability).unwrap_or_default(),
            keepalive: std::time::Duration::from_secs(
                self.keepalive.or(file.keepalive).unwrap_or(60),
            ),
            max_message_bytes,
            max_members: self.max_members.or(file.max_members).unwrap_or(10_000),
            max_groups_per_creator: self
                .max_groups_per_creator
                .or(file.max_groups_per_creator)
                .unwrap_or(1_000),
            max_resources_per_participant: self
                .max_resources_per_participant
                .or(file.max_resources_per_participant)
                .unwrap_or(64),
            keep_archive: self.keep_archive.or(file.keep_archive).unwrap_or(false),
            max_stanza_bytes: self
                .max_stanza_bytes
                .or(file.max_stanza_bytes)
                .unwrap_or_else(|| (256 * 1024).max(max_message_bytes + 64 * 1024)),
            max_stanza_depth: self
                .max_stanza_depth
                .or(file.max_stanza_depth)
                .unwrap_or(32),
            max_outbox_bytes: self
                .max_outbox_bytes
                .or(file.max_outbox_bytes)
                .unwrap_or(32 << 20),
            write_timeout: std::time::Duration::from_secs(
                self.write_timeout.or(file.write_timeout).unwrap_or(30),
            ),
            message_burst: self.message_burst.or(file.message_burst).unwrap_or(500),
            messages_per_minute: self
                .messages_per_minute
                .or(file.messages_per_minute)
                .unwrap_or(600),
            signals_per_minute: self
                .signals_per_minute
                .or(file.signals_per_minute)
                .unwrap_or(1_200),
            channels_per_hour: self
                .channels_per_hour
                .or(file.channels_per_hour)
                .unwrap_or(100),
            joins_per_minute: self
                .joins_per_minute
                .or(file.joins_per_minute)
                .unwrap_or(600),
            adds_per_hour: self.adds_per_hour.or(file.adds_per_hour).unwrap_or(1_000),
            history_burst: self.history_burst.or(file.history_burst).unwrap_or(300),
            history_per_minute: self
                .history_per_minute
                .or(file.history_per_minute)
                .unwrap_or(600),
            payload_namespaces,
            control_socket,
            log_level,
            bootstrap,
            metrics,
        };
        if settings.max_members == 0 {
            bail!("max_members must be at least 1");
        }
        if settings.max_resources_per_participant == 0 {
            bail!("max_resources_per_participant must be at least 1");
        }
        if settings.keepalive.is_zero() {
            bail!("keepalive must be at least 1 second");
        }
        if settings.max_message_bytes < 1024 {
            bail!("max_message_bytes must be at least 1024");
        }
        if settings.max_stanza_bytes < 8 * 1024 || settings.max_stanza_bytes > 64 << 20 {
            bail!("max_stanza_bytes must be between 8192 and 67108864");
        }
        if settings.max_stanza_bytes <= settings.max_message_bytes {
            bail!(
                "max_stanza_bytes ({}) must be larger than max_message_bytes ({}): the stanza carries the message",
                settings.max_stanza_bytes,
                settings.max_message_bytes
            );
        }
        // Dropping a minidom element recurses once per level: the depth bounds the stack.
        if !(8..=128).contains(&settings.max_stanza_depth) {
            bail!("max_stanza_depth must be between 8 and 128");
        }
        if settings.max_outbox_bytes < 1 << 20 {
            bail!("max_outbox_bytes must be at least 1048576");
        }
        if settings.write_timeout.is_zero() {
            bail!("write_timeout must be at least 1 second");
        }
        if settings.message_burst > 0 && settings.messages_per_minute == 0 {
            bail!(
                "messages_per_minute must be at least 1 while message_burst is set (a message_burst of 0 turns the message quota off)"
            );
        }
        if settings.history_burst > 0 && settings.history_per_minute == 0 {
            bail!(
                "history_per_minute must be at least 1 while history_burst is set (a history_burst of 0 turns the history quota off)"
            );
        }
        // Beyond these a quota no longer limits anything a server could deliver; a typo, not
        // a choice (0 is how to turn one off).
        for (name, value, most) in [
            ("message_burst", settings.message_burst, 1_000_000),
            (
                "messages_per_minute",
                settings.messages_per_minute,
                6_000_000,
            ),
            ("signals_per_minute", settings.signals_per_minute, 6_000_000),
            ("channels_per_hour", settings.channels_per_hour, 1_000_000),
            ("joins_per_minute", settings.joins_per_minute, 1_000_000),
            ("adds_per_hour", settings.adds_per_hour, 10_000_000),
            ("history_burst", settings.history_burst, 1_000_000),
            ("history_per_minute", settings.history_per_minute, 6_000_000),
        ] {
            if value > most {
                bail!("{name} must be at most {most} (0 turns it off)");
            }
        }
        Ok((settings, Sources(sources)))
    }
}

/// The control socket of the database at `database`, beside it: `mixd.db` → `mixd.sock`. Not
/// `mixd.db.sock`: what copies or scans `mixd.db*` (the database with its `-wal` and `-shm`)
/// must not meet a socket. A PostgreSQL database has no file beside which to put it:
/// `mixd.sock` in the working directory (each instance on one machine needs its own, set
/// `control_socket`; docs/operations.md).
pub fn default_control_socket(database: &Path) -> PathBuf {
    match Database::from(database.to_path_buf()) {
        Database::Sqlite(path) => path.with_extension("sock"),
        Database::Postgres(_) => PathBuf::from("mixd.sock"),
    }
}

/// Where `mixd admin` finds the service: its database and control socket, from the same
/// flags, environment and file as `mixd run` (nothing else is needed, so nothing else is
/// asked).
#[derive(Debug, Default, Args)]
pub struct Place {
    /// The TOML file mixd runs with (only `database` and `control_socket` are read).
    #[arg(long, env = "MIXD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// SQLite database file, or a PostgreSQL URL [default: mixd.db].
    #[arg(long, env = "MIXD_DATABASE", value_name = "FILE")]
    pub database: Option<PathBuf>,

    /// The running mixd's control socket [default: beside the database, `.sock` for its
    /// extension].
    #[arg(long, env = "MIXD_CONTROL_SOCKET", value_name = "FILE")]
    pub control_socket: Option<PathBuf>,
}

impl Place {
    /// The database and the control socket, flags and environment over the file.
    pub fn resolve(self) -> anyhow::Result<(PathBuf, PathBuf)> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => Options::default(),
        };
        let database = self
            .database
            .or(file.database)
            .unwrap_or_else(|| "mixd.db".into());
        let control_socket = self
            .control_socket
            .or(file.control_socket)
            .unwrap_or_else(|| default_control_socket(&database));
        Ok((database, control_socket))
    }
}

fn read_file(path: &Path) -> anyhow::Result<Options> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("in {}", path.display()))
}

impl Settings {
    /// The explanation `mixd check-config` prints.
    pub fn explain(&self, sources: &Sources) -> String {
        let source = |name: &str| {
            sources
                .0
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, s)| s.as_str())
                .unwrap_or("default")
        };
        let rows = [
            (
                "server",
                self.server.clone(),
                "the XMPP server's component listener mixd connects to",
            ),
            (
                "jid",
                self.domain.clone(),
                "channels are <name>@this domain",
            ),
            (
                "secret",
                format!(
                    "set ({} characters, not shown)",
                    self.secret.chars().count()
                ),
                "must equal the server's component secret",
            ),
            (
                "database",
                self.database.to_string(),
                match self.database {
                    Database::Sqlite(_) => "SQLite file, created if missing",
                    Database::Postgres(_) => "PostgreSQL database, schema created if missing",
                },
            ),
            (
                "user_domains",
                self.user_domains.join(","),
                "users of these domains may create channels",
            ),
            (
                "log_format",
                format!("{:?}", self.log_format).to_lowercase(),
                "log output",
            ),
            (
                "durability",
                format!("{:?}", self.durability).to_lowercase(),
                "normal survives a crash of mixd, full also a power cut",
            ),
            (
                "max_message_bytes",
                self.max_message_bytes.to_string(),
                "larger messages are refused with not-acceptable",
            ),
            (
                "keepalive",
                self.keepalive.as_secs().to_string(),
                "seconds of server silence before mixd pings it",
            ),
            (
                "max_members",
                self.max_members.to_string(),
                "participants per group (a group may set fewer)",
            ),
            (
                "max_groups_per_creator",
                self.max_groups_per_creator.to_string(),
                "groups one user may have created (0: no limit)",
            ),
            (
                "max_resources_per_participant",
                self.max_resources_per_participant.to_string(),
                "clients one participant may have online in a channel",
            ),
            (
                "keep_archive",
                self.keep_archive.to_string(),
                "a deleted group's archive stays in the database",
            ),
            (
                "max_stanza_bytes",
                self.max_stanza_bytes.to_string(),
                "larger stanzas are skipped unread, refused with policy-violation",
            ),
            (
                "max_stanza_depth",
                self.max_stanza_depth.to_string(),
                "deeper stanzas are skipped, refused with policy-violation",
            ),
            (
                "max_outbox_bytes",
                self.max_outbox_bytes.to_string(),
                "queued output at which mixd stops taking new stanzas",
            ),
            (
                "write_timeout",
                self.write_timeout.as_secs().to_string(),
                "seconds the server may read nothing before the link is renewed",
            ),
            (
                "message_burst",
                self.message_burst.to_string(),
                "posts one user may make at once (0: no message quota)",
            ),
            (
                "messages_per_minute",
                self.messages_per_minute.to_string(),
                "posts one user may make per minute, sustained",
            ),
            (
                "signals_per_minute",
                self.signals_per_minute.to_string(),
                "chat states, receipts, reactions, retractions of one user per minute (0: no limit)",
            ),
            (
                "channels_per_hour",
                self.channels_per_hour.to_string(),
                "channels one user may create per hour (0: no limit)",
            ),
            (
                "joins_per_minute",
                self.joins_per_minute.to_string(),
                "joins and join requests of one user per minute (0: no limit)",
            ),
            (
                "adds_per_hour",
                self.adds_per_hour.to_string(),
                "users one user may add or invite per hour (0: no limit)",
            ),
            (
                "history_burst",
                self.history_burst.to_string(),
                "archive reads one user may ask for at once (0: no history quota)",
            ),
            (
                "history_per_minute",
                self.history_per_minute.to_string(),
                "archive reads one user may ask for per minute, sustained",
            ),
            (
                "payload_namespaces",
                if self.payload_namespaces.is_empty() {
                    "(none)".to_owned()
                } else {
                    self.payload_namespaces.join(",")
                },
                "opaque payloads participants' messages may carry",
            ),
            (
                "control_socket",
                self.control_socket.display().to_string(),
                "where `mixd admin` reaches the running service",
            ),
            (
                "log_level",
                self.log_level.clone(),
                "what is logged (MIXD_LOG, if set, overrides it)",
            ),
            (
                "bootstrap_listen",
                match &self.bootstrap {
                    Some(b) => format!("http://{}{}", b.listen, b.base_path),
                    None => "(off)".to_owned(),
                },
                "the FlyChat SDK's REST bootstrap",
            ),
            (
                "metrics",
                self.metrics
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "(off)".to_owned()),
                "where /metrics and /health are served over HTTP",
            ),
        ];
        let mut out = String::from("configuration is valid:\n");
        for (name, value, why) in rows {
            out.push_str(&format!(
                "  {name:<29} = {value:<32} [{}] {why}\n",
                source(name)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        options: Options,
    }

    fn resolve(args: &[&str]) -> anyhow::Result<(Settings, Sources)> {
        let matches = Cli::command().try_get_matches_from(args)?;
        Cli::from_arg_matches(&matches)?.options.resolve(&matches)
    }

    #[test]
    fn flags_override_file_and_defaults_fill_in() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mixd.toml");
        std::fs::write(&file, "jid = 'mix.example.org'\nsecret = 's3cret'\nserver = '10.0.0.1:5347'\nuser_domains = ['example.org', 'other.org']\n").unwrap();
        let (settings, sources) = resolve(&[
            "t",
            "--config",
            file.to_str().unwrap(),
            "--server",
            "127.0.0.1:6000",
        ])
        .unwrap();
        assert_eq!(settings.server, "127.0.0.1:6000");
        assert_eq!(settings.domain, "mix.example.org");
        assert_eq!(settings.user_domains, vec!["example.org", "other.org"]);
        assert_eq!(
            settings.database,
            Database::Sqlite(PathBuf::from("mixd.db"))
        );
        assert_eq!(settings.max_resources_per_participant, 64);
        let explained = settings.explain(&sources);
        assert!(
            explained.contains("[flag]") && explained.contains("[default]"),
            "{explained}"
        );
        assert!(!explained.contains("s3cret"));
        assert!(!format!("{settings:?}").contains("s3cret"));
    }

    #[test]
    fn the_bootstrap_is_a_table_of_the_file_and_off_without_listen() {
        let (settings, sources) =
            resolve(&["t", "--jid", "mix.example.org", "--secret", "x"]).unwrap();
        assert!(settings.bootstrap.is_none());
        assert!(settings.explain(&sources).contains("(off)"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mixd.toml");
        std::fs::write(&file, "jid = 'mix.example.org'\nsecret = 's'\n[bootstrap]\nlisten = '127.0.0.1:8080'\nbase_path = 'api/v2/'\n").unwrap();
        let (settings, _) = resolve(&["t", "--config", file.to_str().unwrap()]).unwrap();
        let bootstrap = settings.bootstrap.unwrap();
        assert_eq!(bootstrap.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(bootstrap.base_path, "/api/v2");
        assert_eq!(bootstrap.xmpp_host, "example.org");
        assert_eq!(bootstrap.c2s, "127.0.0.1:5222");
        let (settings, _) = resolve(&[
            "t",
            "--config",
            file.to_str().unwrap(),
            "--bootstrap-xmpp-host",
            "chat.example.org",
        ])
        .unwrap();
        assert_eq!(settings.bootstrap.unwrap().xmpp_host, "chat.example.org");
        std::fs::write(
            &file,
            "jid = 'mix.example.org'\nsecret = 's'\n[bootstrap]\nlisten = 'x'\n",
        )
        .unwrap();
        assert!(resolve(&["t", "--config", file.to_str().unwrap()]).is_err());
    }

    #[test]
    fn payload_namespaces_are_an_applications_own() {
        let (settings, sources) =
            resolve(&["t", "--jid", "mix.localhost", "--secret", "x"]).unwrap();
        assert!(settings.payload_namespaces.is_empty());
        assert!(settings.explain(&sources).contains("(none)"));
        let (settings, _) = resolve(&[
            "t",
            "--jid",
            "mix.localhost",
            "--secret",
            "x",
            "--payload-namespace",
            "urn:example:poll:0, https://app.example.org/ns",
        ])
        .unwrap();
        assert_eq!(
            settings.payload_namespaces,
            vec!["urn:example:poll:0", "https://app.example.org/ns"]
        );
        let err = resolve(&[
            "t",
            "--jid",
            "mix.localhost",
            "--secret",
            "x",
            "--payload-namespace",
            "http://jabber.org/protocol/pubsub#event",
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("payload_namespaces"), "{err}");
    }

    #[test]
    fn user_domain_defaults_to_parent_and_errors_are_explained() {
        let (settings, _) = resolve(&["t", "--jid", "mix.localhost", "--secret", "x"]).unwrap();
        assert_eq!(settings.user_domains, vec!["localhost"]);
        let err = resolve(&["t", "--secret", "x"]).unwrap_err().to_string();
        assert!(err.contains("--jid"), "{err}");
        let err = resolve(&["t", "--jid", "a@mix.localhost", "--secret", "x"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("bare domain"), "{err}");
    }

    #[test]
    fn admin_finds_the_database_and_its_control_socket_as_run_does() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mixd.toml");
        std::fs::write(
            &file,
            "jid = 'mix.example.org'\nsecret = 's'\ndatabase = '/var/lib/mixd/mixd.db'\n",
        )
        .unwrap();
        let place = |config: Option<&Path>, socket: Option<&str>| Place {
            config: config.map(Path::to_owned),
            database: None,
            control_socket: socket.map(PathBuf::from),
        };
        assert_eq!(
            place(Some(&file), None).resolve().unwrap(),
            (
                "/var/lib/mixd/mixd.db".into(),
                "/var/lib/mixd/mixd.sock".into()
            )
        );
        let (settings, _) = resolve(&["t", "--config", file.to_str().unwrap()]).unwrap();
        assert_eq!(
            settings.control_socket,
            PathBuf::from("/var/lib/mixd/mixd.sock")
        );
        assert_eq!(
            place(None, Some("/run/c.sock")).resolve().unwrap(),
            ("mixd.db".into(), "/run/c.sock".into())
        );
    }

    #[test]
    fn wire_limits_have_defaults_and_bounds() {
        let base = ["t", "--jid", "mix.localhost", "--secret", "x"];
        let (settings, _) = resolve(&base).unwrap();
        assert_eq!(settings.max_stanza_bytes, 256 * 1024);
        assert_eq!(settings.max_stanza_depth, 32);
        assert_eq!(settings.max_outbox_bytes, 32 << 20);
        assert_eq!(settings.write_timeout, std::time::Duration::from_secs(30));
        // A larger message limit raises the stanza limit's default with it.
        let (settings, _) =
            resolve(&[&base[..], &["--max-message-bytes", "1048576"]].concat()).unwrap();
        assert_eq!(settings.max_stanza_bytes, 1024 * 1024 + 64 * 1024);
        for (flag, value, complaint) in [
            ("--max-stanza-depth", "1000", "max_stanza_depth"),
            (
                "--max-stanza-bytes",
                "65536",
                "larger than max_message_bytes",
            ),
            ("--max-outbox-bytes", "10", "max_outbox_bytes"),
            ("--write-timeout", "0", "write_timeout"),
            ("--messages-per-minute", "0", "messages_per_minute"),
            ("--history-per-minute", "0", "history_per_minute"),
            ("--adds-per-hour", "20000000", "adds_per_hour"),
        ] {
            let err = resolve(&[&base[..], &[flag, value]].concat())
                .unwrap_err()
                .to_string();
            assert!(err.contains(complaint), "{flag}: {err}");
        }
    }

    #[test]
    fn quotas_have_defaults_and_come_from_each_source() {
        let base = ["t", "--jid", "mix.localhost", "--secret", "x"];
        let (settings, _) = resolve(&base).unwrap();
        assert_eq!(
            (
                settings.message_burst,
                settings.messages_per_minute,
                settings.signals_per_minute,
                settings.channels_per_hour,
                settings.joins_per_minute,
                settings.adds_per_hour,
                settings.history_burst,
                settings.history_per_minute
            ),
            (500, 600, 1_200, 100, 600, 1_000, 300, 600)
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mixd.toml");
        std::fs::write(&file, "channels_per_hour = 5\njoins-per-minute = 7\n").unwrap();
        let (settings, sources) = resolve(
            &[
                &base[..],
                &["--config", file.to_str().unwrap(), "--message-burst", "0"],
            ]
            .concat(),
        )
        .unwrap();
        assert_eq!(
            settings.message_burst, 0,
            "0 turns it off, whatever the rate"
        );
        assert_eq!(
            (settings.channels_per_hour, settings.joins_per_minute),
            (5, 7)
        );
        let explained = settings.explain(&sources);
        assert!(explained.contains("channels_per_hour"), "{explained}");
    }

    #[test]
    fn metrics_are_off_by_default_and_the_flag_overrides_the_file() {
        let base = ["t", "--jid", "mix.localhost", "--secret", "x"];
        let (settings, _) = resolve(&base).unwrap();
        assert_eq!(settings.metrics, None);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mixd.toml");
        std::fs::write(&file, "metrics = '127.0.0.1:9090'\n").unwrap();
        let file = file.to_str().unwrap();
        let (settings, sources) = resolve(&[&base[..], &["--config", file]].concat()).unwrap();
        assert_eq!(settings.metrics, Some("127.0.0.1:9090".parse().unwrap()));
        assert!(settings.explain(&sources).contains("127.0.0.1:9090"));
        let flag = ["--config", file, "--metrics", "[::1]:9100"];
        let (settings, sources) = resolve(&[&base[..], &flag].concat()).unwrap();
        assert_eq!(settings.metrics, Some("[::1]:9100".parse().unwrap()));
        assert!(settings.explain(&sources).contains("[flag]"));
        let err = resolve(&[&base[..], &["--metrics", "localhost"]].concat())
            .unwrap_err()
            .to_string();
        assert!(err.contains("IP address and port"), "{err}");
    }
}
