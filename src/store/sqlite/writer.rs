//! The one thread that writes messages, committing whatever is waiting in one
//! transaction (group commit).
//!
//! A message POST used to hand its insert to the blocking pool, one thread wake-up and
//! one commit per message; under load, waking and switching threads cost more CPU than
//! SQLite itself. Here writes queue up while a commit runs, and the next commit takes
//! them all. Each job runs inside its own savepoint, so a job that fails is rolled back
//! alone and the others still commit.

use std::sync::mpsc;

use anyhow::anyhow;
use r2d2_sqlite::rusqlite::{self, Connection};
use tokio::sync::oneshot;

use crate::ports::BackendResult;

/// Jobs committed together at most; a bound on how long a batch holds the write lock.
const MAX_BATCH: usize = 256;

/// A queued write: run inside the batch, then told how the batch's commit went.
trait Job: Send {
    fn run(&mut self, conn: &Connection);
    fn settle(self: Box<Self>, commit: Result<(), &rusqlite::Error>);
}

struct Pending<T, F> {
    work: Option<F>,
    result: Option<BackendResult<T>>,
    reply: oneshot::Sender<BackendResult<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> rusqlite::Result<T> + Send,
{
    fn run(&mut self, conn: &Connection) {
        let Some(work) = self.work.take() else { return };
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            self.result = Some(Err(e.into()));
            return;
        }
        // A job that panics (a bug) fails alone: the thread, and every later write, live on.
        let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn))) {
            Ok(result) => result.map_err(anyhow::Error::from),
            Err(_) => Err(anyhow!("the write panicked; it was rolled back")),
        };
        let end = if result.is_ok() { "RELEASE job" } else { "ROLLBACK TO job; RELEASE job" };
        self.result = Some(conn.execute_batch(end).map_err(anyhow::Error::from).and(result));
    }

    fn settle(self: Box<Self>, commit: Result<(), &rusqlite::Error>) {
        let outcome = match (commit, self.result) {
            (Err(e), _) => Err(anyhow!("committing to SQLite: {e}")),
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(anyhow!("the SQLite writer did not run this write")),
        };
        // The caller may have given up (its deadline passed); the write stands anyway.
        let _ = self.reply.send(outcome);
    }
}

pub struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the writer thread on its own connection; it ends when the writer is dropped.
    pub fn start(conn: Connection) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new().name("sqlite-writer".into()).spawn(move || run(conn, queue))?;
        Ok(Self { jobs })
    }

    /// Runs `work` in the next batch and answers once that batch is committed.
    pub async fn write<T, F>(&self, work: F) -> BackendResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending { work: Some(work), result: None, reply });
        self.jobs.send(job).map_err(|_| anyhow!("the SQLite writer has stopped"))?;
        answer.await.map_err(|_| anyhow!("the SQLite writer stopped before committing"))?
    }
}

fn run(conn: Connection, queue: mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        batch.extend(queue.try_iter().take(MAX_BATCH - 1));
        let commit = conn.execute_batch("BEGIN IMMEDIATE").and_then(|()| {
            for job in &mut batch {
                job.run(&conn);
            }
            conn.execute_batch("COMMIT")
        });
        if commit.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for job in batch {
            job.settle(commit.as_ref().map(|_| ()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer_with_table() -> (tempfile::TempDir, Writer, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER PRIMARY KEY);").unwrap();
        (dir, Writer::start(conn).unwrap(), path)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_all_commit_and_a_failing_one_fails_alone() {
        let (_dir, writer, path) = writer_with_table();
        let writer = std::sync::Arc::new(writer);
        let writes = (0..500).map(|v| {
            let writer = writer.clone();
            // Every 50th value repeats an earlier one: a primary-key violation.
            let value = if v % 50 == 49 { v - 1 } else { v };
            tokio::spawn(async move { writer.write(move |c| c.execute("INSERT INTO t VALUES (?1)", [value])).await })
        });
        let results: Vec<_> = futures_util::future::join_all(writes).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 10, "the ten duplicates fail");
        let stored: i64 =
            Connection::open(&path).unwrap().query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(stored, 490, "every other write committed");
    }

    #[tokio::test]
    async fn a_write_that_panics_fails_alone_and_the_writer_lives_on() {
        let (_dir, writer, path) = writer_with_table();
        let panicked = writer
            .write(|c| {
                c.execute("INSERT INTO t VALUES (1)", [])?;
                if c.is_autocommit() {
                    return Ok(());
                }
                panic!("a bug in a write");
            })
            .await;
        assert!(panicked.unwrap_err().to_string().contains("panicked"));
        writer.write(|c| c.execute("INSERT INTO t VALUES (2)", [])).await.unwrap();
        let stored: Vec<i64> = Connection::open(&path)
            .unwrap()
            .prepare("SELECT v FROM t")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(stored, vec![2], "the panicked write was rolled back, the next one committed");
    }
}
