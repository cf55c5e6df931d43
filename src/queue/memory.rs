//! In-process mail queue for a single instance: a bounded channel, delayed retries and
//! a bounded dead-letter list. Jobs do not survive a restart; use RabbitMQ for that.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::anyhow;
use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::ports::{BackendResult, Delivery, MailJob, MailQueue};

/// Dead letters kept for an operator; the oldest are dropped beyond this.
const MAX_DEAD_LETTERS: usize = 1000;

pub struct MemoryQueue {
    shared: Arc<Shared>,
    receiver: tokio::sync::Mutex<mpsc::Receiver<Queued>>,
}

struct Shared {
    sender: mpsc::Sender<Queued>,
    /// Waiting in the channel or sleeping before a retry.
    depth: AtomicU64,
    dead: Mutex<VecDeque<MailJob>>,
}

struct Queued {
    job: MailJob,
    attempts: u32,
}

impl MemoryQueue {
    pub fn new(capacity: usize) -> Self {
        let (sender, receiver) = mpsc::channel(capacity);
        Self {
            shared: Arc::new(Shared { sender, depth: AtomicU64::new(0), dead: Mutex::default() }),
            receiver: tokio::sync::Mutex::new(receiver),
        }
    }
}

impl Shared {
    fn bury(&self, job: MailJob) {
        let mut dead = self.dead.lock().unwrap();
        if dead.len() == MAX_DEAD_LETTERS {
            dead.pop_front();
        }
        dead.push_back(job);
    }

    fn push(&self, queued: Queued) -> BackendResult<()> {
        self.depth.fetch_add(1, Ordering::Relaxed);
        self.sender.try_send(queued).map_err(|e| {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            match e {
                mpsc::error::TrySendError::Full(_) => anyhow!("mail queue is full"),
                mpsc::error::TrySendError::Closed(_) => anyhow!("mail queue is closed"),
            }
        })
    }
}

#[async_trait]
impl MailQueue for MemoryQueue {
    async fn enqueue(&self, job: MailJob) -> BackendResult<()> {
        self.shared.push(Queued { job, attempts: 0 })
    }

    async fn receive(&self) -> BackendResult<Box<dyn Delivery>> {
        let queued = self.receiver.lock().await.recv().await.ok_or_else(|| anyhow!("mail queue is closed"))?;
        self.shared.depth.fetch_sub(1, Ordering::Relaxed);
        Ok(Box::new(MemoryDelivery { queued: Some(queued), shared: self.shared.clone() }))
    }

    async fn depth(&self) -> BackendResult<u64> {
        Ok(self.shared.depth.load(Ordering::Relaxed))
    }

    async fn dead_letters(&self) -> BackendResult<u64> {
        Ok(self.shared.dead.lock().unwrap().len() as u64)
    }

    async fn requeue_dead_letters(&self) -> BackendResult<u64> {
        let buried: Vec<MailJob> = self.shared.dead.lock().unwrap().drain(..).collect();
        let mut moved = 0;
        let mut left = buried.into_iter();
        for job in left.by_ref() {
            if let Err(e) = self.shared.push(Queued { job: job.clone(), attempts: 0 }) {
                // Whatever did not fit stays buried rather than being lost.
                let mut dead = self.shared.dead.lock().unwrap();
                dead.push_back(job);
                dead.extend(left);
                return if moved == 0 { Err(e) } else { Ok(moved) };
            }
            moved += 1;
        }
        Ok(moved)
    }

    async fn ping(&self) -> BackendResult<()> {
        Ok(())
    }
}

struct MemoryDelivery {
    /// Taken when settled; still present on drop means the worker died mid-job.
    queued: Option<Queued>,
    shared: Arc<Shared>,
}

impl MemoryDelivery {
    fn take(&mut self) -> Queued {
        self.queued.take().expect("delivery settled once")
    }
}

#[async_trait]
impl Delivery for MemoryDelivery {
    fn job(&self) -> &MailJob {
        &self.queued.as_ref().expect("unsettled delivery").job
    }

    fn attempts(&self) -> u32 {
        self.queued.as_ref().expect("unsettled delivery").attempts
    }

    async fn ack(mut self: Box<Self>) -> BackendResult<()> {
        self.take();
        Ok(())
    }

    async fn retry(mut self: Box<Self>, delay: Duration) -> BackendResult<()> {
        let Queued { job, attempts } = self.take();
        let shared = self.shared.clone();
        shared.depth.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            shared.depth.fetch_sub(1, Ordering::Relaxed);
            let retried = Queued { job: job.clone(), attempts: attempts + 1 };
            if let Err(e) = shared.push(retried) {
                tracing::error!(error = %e, "could not re-queue a mail for retry; dead-lettering it");
                shared.bury(job);
            }
        });
        Ok(())
    }

    async fn dead_letter(mut self: Box<Self>) -> BackendResult<()> {
        let Queued { job, .. } = self.take();
        self.shared.bury(job);
        Ok(())
    }
}

impl Drop for MemoryDelivery {
    fn drop(&mut self) {
        if let Some(queued) = self.queued.take() {
            let _ = self.shared.push(queued);
        }
    }
}
