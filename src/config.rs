//! Configuration: built-in defaults < config file < the original system's variable names
//! < `CONFAB_*` environment variables. Validated once into [`Settings`]; an invalid value
//! stops start-up with one line naming the key.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};

/// Every key, as written in `confab.toml` or as `CONFAB_<KEY>` in the environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listen address; a comma-separated list listens on several (`:5000,:5002`).
    pub addr: String,
    /// SQLite file, media and generated secrets live here.
    pub data_dir: PathBuf,
    /// HS256 secret; generated once and kept in `data_dir` when unset.
    pub jwt_secret: Option<String>,
    pub mongo_uri: Option<String>,
    pub redis_url: Option<String>,
    /// Prefix for every Redis key, so several deployments can share one Redis.
    pub redis_prefix: String,
    pub amqp_url: Option<String>,
    /// The mail queue's name; the original's is `send-otp`.
    pub amqp_queue: String,
    /// Unacknowledged mails a worker may hold at once.
    pub amqp_prefetch: u16,
    /// `smtp://user:pass@host:587?tls=required`, `smtps://user:pass@host:465`, or
    /// `smtp://host:25` for a local relay. Unset: mails go to the log.
    pub smtp_url: Option<String>,
    pub mail_from: String,
    pub cloudinary_url: Option<String>,
    /// `*` or a comma-separated list of origins.
    pub cors_origins: String,
    /// Protects the admin console; generated on first start when unset.
    pub admin_token: Option<String>,
    /// Comma-separated emails whose users may open the admin console after an OTP login.
    pub admin_emails: String,
    /// How long an admin console session lasts.
    pub admin_session_secs: u64,
    /// This instance's name in the admin console; unset: `<hostname>:<port>`.
    pub instance_name: Option<String>,
    /// A directory holding a static web client, served at `/`.
    pub web_root: Option<PathBuf>,
    /// With several listen ports, the one whose origin serves `web_root`; page loads on
    /// the others are redirected there. Unset: 5002 when listening on it (where the
    /// original client opens its socket), else every port serves the client.
    pub web_port: Option<u16>,
    /// Trust `?userId=` in the Socket.IO handshake like the original (insecure).
    pub legacy_socket_identity: bool,
    /// Also send the online list as `getOnlineUsers` (the plural some of the original's
    /// clones listen to); doubles the cost of every presence broadcast.
    pub presence_plural_event: bool,
    /// `/login` requests allowed per client address per window.
    pub login_ip_limit: u64,
    pub login_ip_window_secs: u64,
    /// Wrong codes allowed before a code is burned.
    pub otp_max_attempts: u64,
    /// How long a mailed code stays valid.
    pub otp_ttl_secs: u64,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Largest accepted JSON request body.
    pub body_limit_bytes: usize,
    /// Largest accepted image upload.
    pub max_image_bytes: usize,
    /// Largest accepted image width or height, in pixels.
    pub max_image_dimension: u32,
    /// This server's public origin (e.g. `https://chat.example.com`), used in image URLs;
    /// unset: taken from each upload request's `Host`.
    pub public_url: Option<String>,
    /// Capacity of the in-process mail queue.
    pub mail_queue_capacity: usize,
    /// Mails sent in parallel by this instance.
    pub mail_workers: usize,
    /// Delivery attempts before a mail is dead-lettered (retries back off from 2 s).
    pub mail_max_attempts: u32,
    /// When set, `/metrics` requires `Authorization: Bearer <metrics_token>`.
    pub metrics_token: Option<String>,
    /// `false` turns off `/metrics` and the per-request and per-store-call timing.
    pub metrics_enabled: bool,
    /// Largest Socket.IO packet a client may send (its events are small; messages go
    /// through the REST API).
    pub socket_max_payload_bytes: usize,
    /// Longest wait for any one call into a backend (store, Redis, RabbitMQ) before the
    /// request gets a 503.
    pub backend_timeout_ms: u64,
    /// Log filter, e.g. `info` or `confab=debug,info`.
    pub log: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: "0.0.0.0:5000".into(),
            data_dir: PathBuf::from("./data"),
            jwt_secret: None,
            mongo_uri: None,
            redis_url: None,
            redis_prefix: "confab:".into(),
            amqp_url: None,
            amqp_queue: "send-otp".into(),
            amqp_prefetch: 16,
            smtp_url: None,
            mail_from: "confab <no-reply@localhost>".into(),
            cloudinary_url: None,
            cors_origins: "*".into(),
            admin_token: None,
            admin_emails: String::new(),
            admin_session_secs: 3600,
            instance_name: None,
            web_root: None,
            web_port: None,
            legacy_socket_identity: false,
            presence_plural_event: false,
            login_ip_limit: 60,
            login_ip_window_secs: 600,
            otp_max_attempts: 5,
            otp_ttl_secs: 300,
            trust_forwarded_for: false,
            body_limit_bytes: 256 * 1024,
            max_image_bytes: 5 * 1024 * 1024,
            max_image_dimension: 8000,
            public_url: None,
            mail_queue_capacity: 10_000,
            mail_workers: 4,
            mail_max_attempts: 5,
            metrics_token: None,
            metrics_enabled: true,
            socket_max_payload_bytes: 16 * 1024,
            backend_timeout_ms: 2000,
            log: "info".into(),
        }
    }
}

const KEYS: &[&str] = &[
    "addr",
    "data_dir",
    "jwt_secret",
    "mongo_uri",
    "redis_url",
    "redis_prefix",
    "amqp_url",
    "amqp_queue",
    "amqp_prefetch",
    "smtp_url",
    "mail_from",
    "cloudinary_url",
    "cors_origins",
    "admin_token",
    "admin_emails",
    "admin_session_secs",
    "instance_name",
    "web_root",
    "web_port",
    "legacy_socket_identity",
    "presence_plural_event",
    "login_ip_limit",
    "login_ip_window_secs",
    "otp_max_attempts",
    "otp_ttl_secs",
    "trust_forwarded_for",
    "body_limit_bytes",
    "max_image_bytes",
    "max_image_dimension",
    "public_url",
    "mail_queue_capacity",
    "mail_workers",
    "mail_max_attempts",
    "metrics_token",
    "metrics_enabled",
    "socket_max_payload_bytes",
    "backend_timeout_ms",
    "log",
];

#[derive(Debug, thiserror::Error)]
#[error("config error: {key}: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

fn problem(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError { key: key.into(), problem: problem.into() }
}

impl Config {
    /// Reads the layers. `file` is `--config`/`CONFAB_CONFIG`; without it `./confab.toml`
    /// is used when present.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => {
                return Err(problem("config", format!("file {} does not exist", path.display())));
            }
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new("confab.toml").exists() => figment = figment.merge(Toml::file_exact("confab.toml")),
            None => {}
        }
        figment = figment.merge(Serialized::defaults(legacy_aliases(|name| std::env::var(name).ok())));
        figment = figment.merge(Env::prefixed("CONFAB_").only(KEYS));
        figment.extract().map_err(|e| {
            let key = e.path.join(".");
            let key = if key.is_empty() { "config".to_string() } else { key };
            problem(&key, e.kind.to_string())
        })
    }

    pub fn validate(self) -> Result<Settings, ConfigError> {
        let listen = parse_addrs(&self.addr)?;
        if let Some(url) = &self.smtp_url {
            let parsed = url::Url::parse(url).map_err(|e| problem("smtp_url", format!("not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "smtp" | "smtps") {
                return Err(problem(
                    "smtp_url",
                    format!("scheme must be smtp:// or smtps://, not {}://", parsed.scheme()),
                ));
            }
            if parsed.host_str().unwrap_or_default().is_empty() {
                return Err(problem("smtp_url", "needs a host"));
            }
        }
        let mail_from: Mailbox = self
            .mail_from
            .parse()
            .map_err(|e| problem("mail_from", format!("not a mailbox like 'confab <no-reply@example.com>': {e}")))?;
        if let Some(secret) = &self.jwt_secret {
            if secret.len() < 16 {
                return Err(problem("jwt_secret", "must be at least 16 characters (32 or more recommended)"));
            }
        }
        if let Some(token) = &self.admin_token {
            if token.len() < 16 {
                return Err(problem("admin_token", "must be at least 16 characters"));
            }
        }
        let cors = parse_cors(&self.cors_origins)?;
        let admin_emails = self
            .admin_emails
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| {
                crate::domain::Email::parse(e).map_err(|_| problem("admin_emails", format!("{e:?} is not an email")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !(1..=7 * 24 * 3600).contains(&self.admin_session_secs) {
            return Err(problem("admin_session_secs", "must be between 1 and 604800"));
        }
        let instance = match &self.instance_name {
            Some(name) if name.trim().is_empty() => return Err(problem("instance_name", "must not be empty")),
            Some(name) => name.trim().to_string(),
            None => default_instance_name(listen.first().map(|a| a.port()).unwrap_or_default()),
        };
        if self.login_ip_limit == 0 || self.login_ip_window_secs == 0 {
            return Err(problem("login_ip_limit", "limit and window must both be above 0"));
        }
        if !(1..=100).contains(&self.otp_max_attempts) {
            return Err(problem("otp_max_attempts", "must be between 1 and 100"));
        }
        if !(1..=3600).contains(&self.otp_ttl_secs) {
            return Err(problem("otp_ttl_secs", "must be between 1 and 3600"));
        }
        if self.body_limit_bytes < 1024 {
            return Err(problem("body_limit_bytes", "must be at least 1024"));
        }
        if !(1024..=100 * 1024 * 1024).contains(&self.max_image_bytes) {
            return Err(problem("max_image_bytes", "must be between 1024 and 104857600"));
        }
        if !(16..=20_000).contains(&self.max_image_dimension) {
            return Err(problem("max_image_dimension", "must be between 16 and 20000"));
        }
        if let Some(redis) = &self.redis_url {
            let url = url::Url::parse(redis).map_err(|e| problem("redis_url", format!("not a URL: {e}")))?;
            if !matches!(url.scheme(), "redis" | "rediss" | "redis+unix" | "unix") {
                return Err(problem("redis_url", "must start with redis:// or rediss://"));
            }
        }
        if let Some(amqp) = &self.amqp_url {
            let url = url::Url::parse(amqp).map_err(|e| problem("amqp_url", format!("not a URL: {e}")))?;
            if !matches!(url.scheme(), "amqp" | "amqps") {
                return Err(problem("amqp_url", "must start with amqp:// or amqps://"));
            }
        }
        if self.amqp_queue.trim().is_empty() || self.amqp_prefetch == 0 {
            return Err(problem("amqp_queue", "queue name must not be empty and amqp_prefetch must be above 0"));
        }
        if let Some(public) = &self.public_url {
            let url = url::Url::parse(public).map_err(|e| problem("public_url", format!("not a URL: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(problem("public_url", "must be an http(s) origin like https://chat.example.com"));
            }
        }
        if let Some(cloudinary) = &self.cloudinary_url {
            crate::media::cloudinary::Cloudinary::from_url(cloudinary)
                .map_err(|e| problem("cloudinary_url", e.to_string()))?;
        }
        if !(1..=64).contains(&self.mail_workers) {
            return Err(problem("mail_workers", "must be between 1 and 64"));
        }
        if !(1..=20).contains(&self.mail_max_attempts) {
            return Err(problem("mail_max_attempts", "must be between 1 and 20"));
        }
        if !(1024..=1024 * 1024).contains(&self.socket_max_payload_bytes) {
            return Err(problem("socket_max_payload_bytes", "must be between 1024 and 1048576"));
        }
        if !(100..=60_000).contains(&self.backend_timeout_ms) {
            return Err(problem("backend_timeout_ms", "must be between 100 and 60000"));
        }
        if self.mail_queue_capacity == 0 {
            return Err(problem("mail_queue_capacity", "must be above 0"));
        }
        if let Some(root) = &self.web_root {
            if !root.is_dir() {
                return Err(problem("web_root", format!("{} is not a directory", root.display())));
            }
        }
        let web_port = web_port(self.web_port, &listen)?;
        tracing_subscriber::EnvFilter::try_new(&self.log).map_err(|e| problem("log", e.to_string()))?;
        Ok(Settings { listen, cors, mail_from, admin_emails, instance, web_port, config: self })
    }

    /// The effective configuration as TOML with every secret masked.
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        let hide = |v: &mut Option<String>| {
            if v.is_some() {
                *v = Some("********".into());
            }
        };
        hide(&mut shown.jwt_secret);
        hide(&mut shown.admin_token);
        hide(&mut shown.metrics_token);
        for url in [
            &mut shown.mongo_uri,
            &mut shown.redis_url,
            &mut shown.amqp_url,
            &mut shown.smtp_url,
            &mut shown.cloudinary_url,
        ] {
            if let Some(u) = url.as_mut() {
                *u = mask_url_password(u);
            }
        }
        toml_string(&shown)
    }
}

fn toml_string(config: &Config) -> String {
    // figment's toml dependency is reachable through its Value type, so serialise by hand
    // to keep one TOML crate in the tree.
    let value = serde_json::to_value(config).expect("config serialises");
    let mut out = String::new();
    for (key, v) in value.as_object().expect("object") {
        match v {
            serde_json::Value::Null => out.push_str(&format!("# {key} = (unset)\n")),
            other => out.push_str(&format!("{key} = {other}\n")),
        }
    }
    out
}

/// `scheme://user:secret@host` → `scheme://user:****@host`; userinfo-only secrets such as
/// Cloudinary's `key:secret@cloud` are masked the same way.
pub fn mask_url_password(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("****"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => "********".into(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    Any,
    List(Vec<String>),
}

fn parse_cors(raw: &str) -> Result<CorsOrigins, ConfigError> {
    let raw = raw.trim();
    if raw == "*" || raw.is_empty() {
        return Ok(CorsOrigins::Any);
    }
    let mut list = Vec::new();
    for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let url = url::Url::parse(origin).map_err(|_| {
            problem("cors_origins", format!("{origin:?} is not an origin like https://chat.example.com"))
        })?;
        if url.path() != "/" || url.query().is_some() {
            return Err(problem("cors_origins", format!("{origin:?} must be an origin without a path")));
        }
        list.push(origin.trim_end_matches('/').to_string());
    }
    Ok(CorsOrigins::List(list))
}

fn parse_addrs(raw: &str) -> Result<Vec<SocketAddr>, ConfigError> {
    let mut addrs = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let full = if part.starts_with(':') { format!("0.0.0.0{part}") } else { part.to_string() };
        let resolved = full
            .to_socket_addrs()
            .map_err(|_| problem("addr", format!("{part:?} is not host:port (e.g. 0.0.0.0:5000 or :5000)")))?
            .next()
            .ok_or_else(|| problem("addr", format!("{part:?} resolves to no address")))?;
        addrs.push(resolved);
    }
    if addrs.is_empty() {
        return Err(problem("addr", "no listen address given"));
    }
    Ok(addrs)
}

/// The port that serves the web client when there is a choice. A browser sends the
/// `token` cookie only to the page's own origin, and the original client opens its socket
/// on its `chat_service` origin (`:5002`): its page must come from there for the socket
/// to be authenticated.
fn web_port(configured: Option<u16>, listen: &[SocketAddr]) -> Result<Option<u16>, ConfigError> {
    let mut ports: Vec<u16> = listen.iter().map(SocketAddr::port).collect();
    ports.sort_unstable();
    ports.dedup();
    match configured {
        Some(port) if !ports.contains(&port) => {
            Err(problem("web_port", format!("{port} is not one of the listen ports ({ports:?})")))
        }
        Some(port) => Ok((ports.len() > 1).then_some(port)),
        None => Ok((ports.len() > 1 && ports.contains(&5002)).then_some(5002)),
    }
}

/// Maps the original services' `.env` names onto our keys, so an existing deployment's
/// environment works as it is. `CONFAB_*` variables win over these.
pub fn legacy_aliases(var: impl Fn(&str) -> Option<String>) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    let mut put = |key: &str, value: String| {
        out.insert(key.to_string(), serde_json::Value::String(value));
    };
    if let Some(port) = var("PORT") {
        put("addr", format!("0.0.0.0:{port}"));
    }
    for (name, key) in [
        ("MONGO_URI", "mongo_uri"),
        ("JWT_SECRET", "jwt_secret"),
        ("REDIS_URL", "redis_url"),
        ("CLIENT_ORIGINS", "cors_origins"),
    ] {
        if let Some(v) = var(name) {
            put(key, v);
        }
    }
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    if let Some(host) = var("Rabbitmq_Host") {
        let user = var("Rabbitmq_Username").unwrap_or_else(|| "guest".into());
        let pass = var("Rabbitmq_Password").unwrap_or_else(|| "guest".into());
        put("amqp_url", format!("amqp://{}:{}@{host}:5672/%2f", enc(&user), enc(&pass)));
    }
    if let (Some(user), Some(pass)) = (var("EMAIL_USER"), var("EMAIL_PASSWORD").or_else(|| var("EMAIL_PASS"))) {
        put("smtp_url", format!("smtps://{}:{}@smtp.gmail.com:465", enc(&user), enc(&pass)));
        put("mail_from", format!("Chat App <{user}>"));
    }
    if let (Some(cloud), Some(key), Some(secret)) = (var("Cloud_Name"), var("Api_Key"), var("Api_Secret")) {
        put("cloudinary_url", format!("cloudinary://{}:{}@{cloud}", enc(&key), enc(&secret)));
    }
    out
}

/// A validated configuration, ready to build the application from.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: Vec<SocketAddr>,
    pub cors: CorsOrigins,
    pub mail_from: Mailbox,
    pub admin_emails: Vec<crate::domain::Email>,
    /// How this instance is named where several serve one deployment.
    pub instance: String,
    /// The listen port whose origin serves `web_root` (others redirect page loads there);
    /// `None` when every port serves it.
    pub web_port: Option<u16>,
    pub config: Config,
}

/// `<hostname>:<port>`, the instance's name when `instance_name` is unset.
pub fn default_instance_name(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "confab".into());
    format!("{host}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let s = Config::default().validate().unwrap();
        assert_eq!(s.listen, vec!["0.0.0.0:5000".parse().unwrap()]);
        assert_eq!(s.cors, CorsOrigins::Any);
    }

    #[test]
    fn several_addresses_and_shorthand() {
        let cfg = Config { addr: ":5000, 127.0.0.1:5002".into(), ..Config::default() };
        let s = cfg.validate().unwrap();
        assert_eq!(s.listen, vec!["0.0.0.0:5000".parse().unwrap(), "127.0.0.1:5002".parse().unwrap()]);
    }

    #[test]
    fn web_client_port_follows_the_original_socket_origin() {
        let web = |addr: &str, port: Option<u16>| {
            Config { addr: addr.into(), web_port: port, ..Config::default() }.validate().map(|s| s.web_port)
        };
        assert_eq!(web(":5000,:5002", None).unwrap(), Some(5002));
        assert_eq!(web(":5000", None).unwrap(), None, "one port serves everything");
        assert_eq!(web(":5000,:6000", None).unwrap(), None, "no socket origin to prefer");
        assert_eq!(web(":5000,:6000", Some(6000)).unwrap(), Some(6000));
        assert_eq!(web(":5000,:5002", Some(7000)).unwrap_err().key, "web_port");
    }

    #[test]
    fn invalid_values_name_their_key() {
        let cases = [
            (Config { addr: "nonsense".into(), ..Config::default() }, "addr"),
            (Config { smtp_url: Some("http://x".into()), ..Config::default() }, "smtp_url"),
            (Config { mail_from: "not a mailbox".into(), ..Config::default() }, "mail_from"),
            (Config { cors_origins: "example.com/path".into(), ..Config::default() }, "cors_origins"),
            (Config { jwt_secret: Some("short".into()), ..Config::default() }, "jwt_secret"),
            (Config { otp_max_attempts: 0, ..Config::default() }, "otp_max_attempts"),
        ];
        for (cfg, key) in cases {
            let err = cfg.validate().unwrap_err();
            assert_eq!(err.key, key, "{err}");
            assert!(err.to_string().starts_with(&format!("config error: {key}: ")));
        }
    }

    #[test]
    fn legacy_names_map_to_keys() {
        let env = |name: &str| {
            match name {
                "PORT" => Some("5002"),
                "Rabbitmq_Host" => Some("mq"),
                "Rabbitmq_Password" => Some("p@ss"),
                "EMAIL_USER" => Some("me@gmail.com"),
                "EMAIL_PASSWORD" => Some("app pw"),
                "Cloud_Name" => Some("demo"),
                "Api_Key" => Some("123"),
                "Api_Secret" => Some("abc"),
                _ => None,
            }
            .map(String::from)
        };
        let map = legacy_aliases(env);
        assert_eq!(map["addr"], "0.0.0.0:5002");
        assert_eq!(map["amqp_url"], "amqp://guest:p%40ss@mq:5672/%2f");
        assert_eq!(map["smtp_url"], "smtps://me%40gmail%2Ecom:app%20pw@smtp.gmail.com:465");
        assert_eq!(map["cloudinary_url"], "cloudinary://123:abc@demo");
    }

    #[test]
    fn every_key_can_be_set_from_the_environment() {
        let fields = serde_json::to_value(Config::default()).unwrap();
        let mut fields: Vec<&str> = fields.as_object().unwrap().keys().map(String::as_str).collect();
        let mut keys = KEYS.to_vec();
        fields.sort();
        keys.sort();
        assert_eq!(fields, keys, "KEYS must list every Config field, or its CONFAB_* variable is ignored");
    }

    #[test]
    fn masked_output_hides_secrets() {
        let cfg = Config {
            jwt_secret: Some("supersecretsupersecret".into()),
            smtp_url: Some("smtps://me:hunter2@smtp.example.com:465".into()),
            ..Config::default()
        };
        let shown = cfg.to_masked_toml();
        assert!(!shown.contains("supersecret"));
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("smtps://me:****@smtp.example.com:465"));
    }
}
