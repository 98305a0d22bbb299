//! The SQLite writer thread, with group commit.
//!
//! Writes queue up while the thread is busy; it takes what has queued (up to
//! [`MAX_BATCH`]) and runs it in **one** transaction, each write in a
//! savepoint of its own — a write that fails is rolled back alone, the others
//! keep their order and their effects. One commit then makes the whole batch
//! durable, and only after it is any write answered: nothing is acknowledged
//! before it is committed, and if the commit fails every write of the batch
//! gets that error. Under load (many sessions appending at once) the WAL
//! receives each changed page once per batch instead of once per write.

use crate::StoreError;
use crate::common::Result;
use rusqlite::{Connection, TransactionBehavior};
use std::sync::mpsc;

/// Most writes committed together.
pub(crate) const MAX_BATCH: usize = 64;

/// A queued write. It runs against the batch's connection (inside its own
/// savepoint), or is told why the batch could not begin; it returns whether
/// it succeeded and the answer to send once the batch's fate is known.
pub(crate) type Job =
    Box<dyn FnOnce(std::result::Result<&Connection, &str>) -> (bool, Answer) + Send>;

/// Sends a write's result; given the batch's commit error, if any.
pub(crate) type Answer = Box<dyn FnOnce(Option<&str>) + Send>;

/// Wraps `f` as a [`Job`] and returns where its result will arrive.
pub(crate) fn job<R: Send + 'static>(
    f: impl FnOnce(&Connection) -> Result<R> + Send + 'static,
) -> (Job, tokio::sync::oneshot::Receiver<Result<R>>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move |conn| {
        let r = match conn {
            Ok(c) => f(c),
            Err(why) => Err(StoreError::Commit(why.to_string())),
        };
        let ok = r.is_ok();
        let answer: Answer = Box::new(move |failed| {
            let r = match (r, failed) {
                (Ok(_), Some(why)) => Err(StoreError::Commit(why.to_string())),
                (r, _) => r,
            };
            let _ = tx.send(r);
        });
        (ok, answer)
    });
    (job, rx)
}

/// The thread's loop: until every sender is gone.
pub(crate) fn run(mut conn: Connection, jobs: mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        run_batch(&mut conn, batch);
    }
}

/// Runs `batch` in one transaction, a savepoint per write, commits, then
/// answers every write.
pub(crate) fn run_batch(conn: &mut Connection, mut batch: Vec<Job>) {
    let mut t = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(t) => t,
        Err(e) => {
            let why = format!("cannot begin a write transaction: {e}");
            for job in batch {
                let (_, answer) = job(Err(&why));
                answer(None);
            }
            return;
        }
    };
    if batch.len() == 1 {
        // Alone: the transaction is its savepoint.
        if let Some(job) = batch.pop() {
            let (ok, answer) = job(Ok(&*t));
            let failed = match ok {
                true => t.commit().err().map(|e| format!("cannot commit: {e}")),
                false => t.rollback().err().map(|e| format!("cannot roll back: {e}")),
            };
            answer(failed.as_deref());
        }
        return;
    }
    let mut answers = Vec::with_capacity(batch.len());
    let mut broken: Option<String> = None;
    for job in batch {
        if let Some(why) = &broken {
            answers.push(job(Err(why)).1);
            continue;
        }
        let sp = match t.savepoint() {
            Ok(sp) => sp,
            Err(e) => {
                let why = format!("cannot open a savepoint: {e}");
                answers.push(job(Err(&why)).1);
                broken = Some(why);
                continue;
            }
        };
        let (ok, answer) = job(Ok(&*sp));
        answers.push(answer);
        // A failed write is undone alone; a savepoint that cannot be
        // released or rolled back leaves the batch in doubt: it is abandoned.
        // (`finish` applies the savepoint's default: roll back, then release.)
        let ended = if ok { sp.commit() } else { sp.finish() };
        if let Err(e) = ended {
            broken = Some(format!("cannot end a savepoint: {e}"));
        }
    }
    let failed = match broken {
        Some(why) => {
            let _ = t.rollback();
            Some(why)
        }
        None => t.commit().err().map(|e| format!("cannot commit: {e}")),
    };
    for answer in answers {
        answer(failed.as_deref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::not_found;

    fn count(c: &Connection) -> i64 {
        c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count")
    }

    #[test]
    fn a_batch_commits_once_and_a_failed_write_is_undone_alone() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE t (v INTEGER UNIQUE)")
            .expect("schema");
        let insert = |v: i64| {
            move |c: &Connection| -> Result<i64> {
                c.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
                Ok(v)
            }
        };
        let (a, ra) = job(insert(1));
        // Writes, then fails: its row must not stay.
        let (b, rb) = job(|c: &Connection| -> Result<()> {
            c.execute("INSERT INTO t (v) VALUES (2)", [])?;
            Err(not_found("thing", "x"))
        });
        // Sees the earlier write of its own batch.
        let (c, rc) = job(|c: &Connection| Ok(count(c)));
        let (d, rd) = job(insert(1)); // a constraint error, alone
        let (e, re) = job(insert(3));
        run_batch(&mut conn, vec![a, b, c, d, e]);
        assert_eq!(ra.blocking_recv().expect("a").ok(), Some(1));
        assert!(matches!(
            rb.blocking_recv().expect("b"),
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(rc.blocking_recv().expect("c").ok(), Some(1));
        assert!(matches!(
            rd.blocking_recv().expect("d"),
            Err(StoreError::Sqlite(_))
        ));
        assert_eq!(re.blocking_recv().expect("e").ok(), Some(3));
        let rows: Vec<i64> = conn
            .prepare("SELECT v FROM t ORDER BY v")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<std::result::Result<_, _>>()
            .expect("rows");
        assert_eq!(rows, vec![1, 3], "committed: the good writes only");
        assert!(conn.is_autocommit(), "no transaction left open");
    }

    #[test]
    fn a_lone_failed_write_leaves_nothing() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE t (v INTEGER)")
            .expect("schema");
        let (a, ra) = job(|c: &Connection| -> Result<()> {
            c.execute("INSERT INTO t (v) VALUES (1)", [])?;
            Err(not_found("thing", "x"))
        });
        run_batch(&mut conn, vec![a]);
        assert!(ra.blocking_recv().expect("a").is_err());
        assert_eq!(count(&conn), 0);
        assert!(conn.is_autocommit());
    }

    #[test]
    fn a_batch_that_cannot_commit_answers_every_write_with_the_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("w.db");
        let mut conn = Connection::open(&path).expect("open");
        conn.execute_batch("CREATE TABLE t (v INTEGER)")
            .expect("schema");
        // Another connection holds the write lock: BEGIN IMMEDIATE fails.
        let other = Connection::open(&path).expect("other");
        other.execute_batch("BEGIN IMMEDIATE").expect("lock");
        conn.busy_timeout(std::time::Duration::from_millis(10))
            .expect("timeout");
        let (a, ra) = job(|c: &Connection| -> Result<()> {
            c.execute("INSERT INTO t (v) VALUES (1)", [])?;
            Ok(())
        });
        let (b, rb) = job(|_: &Connection| -> Result<()> { Ok(()) });
        run_batch(&mut conn, vec![a, b]);
        for r in [
            ra.blocking_recv().expect("a"),
            rb.blocking_recv().expect("b"),
        ] {
            assert!(
                matches!(&r, Err(StoreError::Commit(m)) if m.contains("cannot begin")),
                "{r:?}"
            );
        }
        other.execute_batch("ROLLBACK").expect("unlock");
        assert_eq!(count(&conn), 0, "nothing was written");
    }
}
