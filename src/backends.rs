//! The backends this instance was built with, as one set of ports, and the health check
//! that `/readyz` and the admin console share.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::ports::{Connections, Ephemeral, MailQueue, Mailer, MediaStore, Store};
use crate::realtime::AdapterLink;

/// Every port, chosen from the configuration. Handed to the services that need them and
/// to the background tasks; request handlers reach them only through services.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn Store>,
    pub ephemeral: Arc<dyn Ephemeral>,
    pub mail_queue: Arc<dyn MailQueue>,
    pub mailer: Arc<dyn Mailer>,
    pub media: Arc<dyn MediaStore>,
    pub connections: Arc<dyn Connections>,
}

/// Which adapter serves each port, as operators read it (`sqlite (./data/confab.db)`).
#[derive(Clone, Default)]
pub struct Descriptions {
    pub store: String,
    pub ephemeral: String,
    pub mail_queue: String,
    pub mailer: String,
    /// The Socket.IO adapter's Redis connection, checked for readiness when there is one.
    pub realtime: Option<(String, AdapterLink)>,
}

pub struct BackendCheck {
    pub name: &'static str,
    pub backend: String,
    pub error: Option<String>,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

async fn check<F: Future<Output = anyhow::Result<()>>>(name: &'static str, backend: String, ping: F) -> BackendCheck {
    let error = match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("{e:#}")),
        Err(_) => Some(format!("no answer within {CHECK_TIMEOUT:?}")),
    };
    BackendCheck { name, backend, error }
}

/// Pings every backend at once; each answers within [`CHECK_TIMEOUT`] or is reported
/// as not answering.
#[derive(Clone)]
pub struct Health {
    ports: Ports,
    descriptions: Descriptions,
}

impl Health {
    pub fn new(ports: Ports, descriptions: Descriptions) -> Self {
        Self { ports, descriptions }
    }

    pub fn mail_queue_description(&self) -> &str {
        &self.descriptions.mail_queue
    }

    pub async fn check(&self) -> Vec<BackendCheck> {
        let (p, d) = (&self.ports, &self.descriptions);
        let realtime = async {
            let (description, link) = d.realtime.as_ref()?;
            let ping = async { link.ping().await.map_err(anyhow::Error::from) };
            Some(check("realtime", description.clone(), ping).await)
        };
        let (store, ephemeral, queue, media, realtime) = tokio::join!(
            check("store", d.store.clone(), p.store.ping()),
            check("ephemeral", d.ephemeral.clone(), p.ephemeral.ping()),
            check("mail_queue", d.mail_queue.clone(), p.mail_queue.ping()),
            check("media", p.media.describe(), p.media.ping()),
            realtime,
        );
        [store, ephemeral, queue, media].into_iter().chain(realtime).collect()
    }
}
