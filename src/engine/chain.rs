//! Consecutive transactional migrations on a session of their own (the session-level lock),
//! each still in a transaction of its own, with the server never left waiting for the client
//! between them: while one migration's tracking rows and `COMMIT` run, the next one's opening
//! (its `BEGIN`, marks and statements) is already on its way, and is read after them.
//!
//! Per migration, two messages:
//! - the opening: `BEGIN`, the marks (`MARK_TRANSACTION`, the flight mark), the project's
//!   settings, then the section's statements as the file has them;
//! - the closing: the connecting role and no timeouts, the tracking rows (with the last
//!   migration's warnings, which are known only now), `COMMIT`, and the reset for the next one.
//!
//! Only the opening of migration N + 1 is sent before migration N's answers are read; its
//! closing goes only after N is known to be committed. Nothing of N + 1 can commit before
//! that, whatever happened to N: when N failed, the opening of N + 1 either failed at once
//! (N's transaction was still open and aborted: every statement is refused until it ends), or
//! began a transaction of its own (N's ended, at or after `COMMIT`), which is rolled back
//! before N's failure is looked into, so N's failure is handled from the state it would have
//! left alone. A lost connection rolls back whatever was open.
//!
//! Notices: the session holds the connection after each notice until it is taken
//! (`Notices::hold`); one that came after N's closing was answered belongs to N + 1 (see
//! `read`).

use std::pin::Pin;
use std::time::{Instant, SystemTime};

use tokio_postgres::SimpleQueryStream;

use super::*;

/// The end of a migration's tracking rows when the next one is sent ahead: its cursors are
/// closed (as the reset after `COMMIT` would), and a cursor `WITH HOLD` is declared, which
/// outlives the transaction only if its `COMMIT` succeeds.
const DECLARE_COMMITTED: &str =
    "CLOSE ALL; DECLARE _migrate_committed NO SCROLL CURSOR WITH HOLD FOR SELECT";

/// `RESET_AFTER_TRACKING` but `CLOSE ALL`, which `DECLARE_COMMITTED` did before the `COMMIT`:
/// its cursor stays for the next migration's `MOVE_COMMITTED`.
const RESET_AFTER_HELD: &str = "RESET ALL; UNLISTEN *; DEALLOCATE ALL; DISCARD TEMP; \
     DISCARD SEQUENCES; SET client_min_messages = notice; SET migrate.flight = 'between'";

/// Right after the `BEGIN` of a migration sent ahead: fails (and with it everything after it
/// in the message) unless the migration before committed (`DECLARE_COMMITTED`'s cursor
/// exists) and its reset ran. Where that `COMMIT` failed, the next migration's statements
/// would otherwise run to their end before the failure was read, with whatever a rollback
/// cannot undo (`setval`, advisory locks) and all their time. `MOVE` on a held cursor takes no
/// snapshot (PostgreSQL's `PlannedStmtRequiresSnapshot`), so the migration's own `SET
/// TRANSACTION ISOLATION LEVEL` still comes first.
const MOVE_COMMITTED: &str = "MOVE _migrate_committed";

/// A migration whose opening message has been sent.
struct Opened {
    answers: Pin<Box<SimpleQueryStream>>,
    head: Head,
}

/// What the opening message holds before the section's statements.
struct Head {
    /// How many statements.
    len: usize,
    /// Their length in characters (bytes on `SQL_ASCII`), for PostgreSQL's error positions.
    lead: usize,
    /// How many of the last of them are the project's settings (one statement each).
    settings: usize,
    /// The flight mark it sets.
    mark: String,
}

/// What the server answered to one message: how many statements completed, and the error of
/// the one that failed.
type Answer = (usize, Result<(), tokio_postgres::Error>);

impl Runner<'_> {
    /// Runs `chain` (transactional migrations without COPY, session-level lock) in order, each
    /// in its own transaction; stops at the first failure (in `outcome`). True when the run
    /// must stop (a failure, or a signal).
    pub(super) async fn run_chain(
        &mut self,
        chain: &[&Migration],
        direction: Direction,
        outcome: &mut Outcome,
    ) -> anyhow::Result<bool> {
        self.session.notices.hold(true);
        let stop = self.chain_steps(chain, direction, outcome).await;
        self.session.notices.hold(false);
        stop
    }

    async fn chain_steps(
        &mut self,
        chain: &[&Migration],
        direction: Direction,
        outcome: &mut Outcome,
    ) -> anyhow::Result<bool> {
        let mut opened: Option<Opened> = None;
        // The last migration's warnings, written with the next one's tracking rows.
        let mut owed: Option<(&Migration, Vec<ServerMessage>)> = None;
        for (i, migration) in chain.iter().copied().enumerate() {
            let opening = match opened.take() {
                Some(opening) => opening,
                None => {
                    if let Some(signal) = session::interrupted() {
                        self.session.notices.hold(false);
                        // Nothing read since the signal: its cancel request may still be on
                        // its way, and would cancel the bookkeeping.
                        session::settle().await;
                        self.pay(owed.take(), direction).await?;
                        outcome.failure =
                            Some(self.not_started(migration, direction, signal, None).await?);
                        return Ok(true);
                    }
                    if !self.session.reset {
                        self.session.notices.hold(false);
                        self.session
                            .client
                            .batch_execute(&self.reset_session())
                            .await?;
                        self.session.notices.hold(true);
                    }
                    self.session.reset = false;
                    self.open(migration, direction, false).await?
                }
            };
            self.progress.migration(&migration.file_name());
            let started = SystemTime::now();
            let clock = Instant::now();
            let note = (self.note)(migration.version);
            if let Some(signal) = session::interrupted() {
                // Sent ahead before the signal came: nothing commits it now, and what of it
                // ran is rolled back.
                let ran = self.abandon(opening, true).await;
                self.session.notices.hold(false);
                self.pay(owed.take(), direction).await?;
                let failure = self.not_started(migration, direction, signal, ran).await?;
                outcome.failure = Some(failure);
                return Ok(true);
            }
            // The closing: tracking rows (and the last migration's warnings), COMMIT, reset.
            let mut record = self.record(migration, direction, note.as_deref(), true);
            if let Some((before, warnings)) = &owed {
                let texts: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
                record = format!(
                    "{record}; {}",
                    state::add_warnings_sql(before.version, direction, &texts)
                );
            }
            // A next migration will be sent ahead: its opening must find this one committed.
            let ahead = chain.get(i + 1).is_some();
            if ahead {
                record = format!("{record}; {DECLARE_COMMITTED}");
            }
            let record_len = lexer::split_statements(&record).map_or(0, |all| all.len());
            let reset = self.reset_keeping_application_name(match ahead {
                true => RESET_AFTER_HELD,
                false => RESET_AFTER_TRACKING,
            });
            let closing = format!("{record}; COMMIT; {reset}");
            let closing = self.session.client.simple_query_raw(&closing).await;
            let next = match (chain.get(i + 1), &closing) {
                // A failure to send it shows in this migration's answers.
                (Some(next), Ok(_)) if session::interrupted().is_none() => {
                    self.open(next, direction, true).await.ok()
                }
                _ => None,
            };
            let Opened { answers, head } = opening;
            let (opening_answer, closing_answer, mine) = match closing {
                Ok(closing) => {
                    let (first, second, mine) =
                        self.read(answers, Some(Box::pin(closing)), true).await;
                    (first, second.unwrap_or((0, Ok(()))), mine)
                }
                Err(e) => {
                    let (first, _, mine) = self.read(answers, None, true).await;
                    (first, (0, Err(e)), mine)
                }
            };
            let warnings = mine;
            let duration_ms = clock.elapsed().as_millis() as i64;
            let section = section(migration, direction);
            let statements = statements(migration, section)?;
            let (mut flight, began, reset_error) = self.attribute(
                &head,
                section,
                &statements,
                opening_answer,
                closing_answer,
                record_len,
            );
            flight.warnings = warnings;
            match flight.error {
                None => {
                    // Its COMMIT took effect; with it the last migration's warnings.
                    owed = None;
                    if !flight.warnings.is_empty() {
                        owed = Some((migration, flight.warnings.clone()));
                    }
                    outcome.done(Step {
                        version: migration.version,
                        name: migration.name.clone(),
                        direction,
                        duration_ms,
                        warnings: flight.warnings,
                    });
                    if let Some(e) = reset_error {
                        // The session was not reset after it: the next one starts over,
                        // with a reset of its own, after what was sent of it is undone.
                        let lost = is_connection_lost(&e);
                        if let Some(next) = next {
                            if !lost {
                                self.abandon(next, false).await;
                            }
                        }
                        self.session.notices.hold(false);
                        let reset = match lost {
                            true => Err(e),
                            false => {
                                self.session
                                    .client
                                    .batch_execute(&self.reset_session())
                                    .await
                            }
                        };
                        match reset {
                            Ok(()) => {
                                self.session.notices.hold(true);
                                self.session.reset = true;
                                self.pay(owed.take(), direction).await?;
                                continue;
                            }
                            Err(e) => {
                                if !is_connection_lost(&e) {
                                    self.pay(owed.take(), direction).await?;
                                }
                                outcome.failure = Some(match chain.get(i + 1) {
                                    Some(&next) => {
                                        self.not_reset(migration, next, direction, &e).await
                                    }
                                    None => self.lost_after(migration, direction, &e),
                                });
                                return Ok(true);
                            }
                        }
                    }
                    opened = next;
                    if opened.is_none() {
                        self.session.reset = true;
                    }
                }
                Some((part, ref e)) => {
                    // The next migration's opening first: whatever of it ran is undone, so
                    // the session is as this failure left it.
                    let mut lost = is_connection_lost(e);
                    if let Some(next) = next {
                        if !lost {
                            self.abandon(next, false).await;
                        }
                    }
                    // Lost while what was sent ahead was undone: this failure is still told
                    // (its history line may not be written, which its report then says).
                    lost |= self.session.client.is_closed();
                    self.session.notices.hold(false);
                    if !lost && began && part != Part::Commit {
                        // As `flight` does: ask whether the migration had ended our
                        // transaction itself, then end the aborted one.
                        flight.ended_early |=
                            ended_before_error(&self.session.client, Some(&head.mark)).await;
                        let _ = self.session.client.batch_execute("COMMIT").await;
                    }
                    if !lost {
                        self.pay(owed.take(), direction).await?;
                    }
                    match self
                        .settle(migration, direction, flight, started, duration_ms, note)
                        .await?
                    {
                        Ran::Failed(failure) => outcome.failure = Some(failure),
                        Ran::DoneThenLost(step, failure) => {
                            outcome.done(step);
                            outcome.failure = Some(failure);
                        }
                        Ran::Done(step) => outcome.done(step),
                        Ran::Skipped => outcome.skipped.push(migration.version),
                    }
                    return Ok(outcome.failure.is_some());
                }
            }
        }
        self.session.notices.hold(false);
        self.pay(owed.take(), direction).await?;
        Ok(false)
    }

    /// The failure for `next`, which did not start because the session could not be reset
    /// after `done` (committed and recorded): the reset's error, a lost connection's too.
    async fn not_reset(
        &mut self,
        done: &Migration,
        next: &Migration,
        direction: Direction,
        error: &tokio_postgres::Error,
    ) -> Failure {
        let lost = is_connection_lost(error);
        let why = match error.as_db_error() {
            Some(db) => describe_db_error(db),
            None => crate::db::chain(error),
        };
        let mut failure = Failure::did_not_start(
            next,
            direction,
            format!(
                "the session could not be reset after {} (which is committed and recorded): \
                 {why}",
                done.file_name()
            ),
        );
        failure.connection_lost = lost;
        if !lost {
            let note = (self.note)(next.version);
            self.log_failure(next, SystemTime::now(), &mut failure, note)
                .await;
        }
        failure
    }

    /// The failure that ends a run whose session was lost (or could not be reset) after
    /// `done`, the last migration it had to run in a chain, committed: `done` is applied and
    /// recorded (it is among the steps too); what comes after it was not started.
    fn lost_after(
        &self,
        done: &Migration,
        direction: Direction,
        error: &tokio_postgres::Error,
    ) -> Failure {
        let why = match error.as_db_error() {
            Some(db) => describe_db_error(db),
            None => crate::db::chain(error),
        };
        let kept = match direction {
            Direction::Down => "reverted and recorded",
            _ => "applied and recorded",
        };
        Failure {
            version: done.version,
            name: done.name.clone(),
            direction,
            file: done.path.clone(),
            line: None,
            error: format!(
                "the session could not be reset after its COMMIT, which took effect: {why}"
            ),
            dirty: false,
            rolled_back: false,
            connection_lost: is_connection_lost(error),
            interrupted: session::interrupted().map(|s| session::signal_name(s).to_string()),
            state: format!("it is {kept}; nothing after it was started"),
            warnings: Vec::new(),
        }
    }

    /// Sends `migration`'s opening message (its transaction's `BEGIN` and marks, the
    /// project's settings, its section's statements). `ahead`: sent before the answers of the
    /// migration before it, whose closing holds `DECLARE_COMMITTED`'s cursor: the opening
    /// starts with `MOVE_COMMITTED`, so none of it runs unless that one committed.
    async fn open(
        &self,
        migration: &Migration,
        direction: Direction,
        ahead: bool,
    ) -> anyhow::Result<Opened> {
        let section = section(migration, direction);
        let statements = statements(migration, section)?;
        let mark = flight_mark();
        let guard = match ahead {
            true => format!("; {MOVE_COMMITTED}"),
            false => String::new(),
        };
        let mut head = format!(
            "{}{guard}; {MARK_TRANSACTION}; {}",
            state::BEGIN,
            set_flight(&mark)
        );
        let mut head_len = if ahead { 4 } else { 3 };
        let all = self.migration_settings();
        let settings = match settings_sql(&all, true) {
            Some(sql) => {
                head = format!("{head}; {sql}");
                head_len += all.len();
                all.len()
            }
            None => 0,
        };
        head.push_str(";\n");
        let lead = if self.session.positions_in_bytes {
            head.len()
        } else {
            head.chars().count()
        };
        let mut message = head;
        if let (Some(first), Some(last)) = (statements.first(), statements.last()) {
            message.push_str(&section.sql[first.offset..last.offset + last.sql.len()]);
        }
        let answers = self.session.client.simple_query_raw(&message).await?;
        Ok(Opened {
            answers: Box::pin(answers),
            head: Head {
                len: head_len,
                lead,
                settings,
                mark,
            },
        })
    }

    /// Reads `first`, then `second` when given, to their ends, passing the server's notices on
    /// as they come when `show` (and cancelling again after a signal, as `flight` does), and
    /// returns them with the answers.
    ///
    /// A notice is this migration's when it came before the last answer: the session holds
    /// the connection at each notice until it is taken (`Notices::hold`), so when one is in
    /// the queue every answer before it has been handed over, and none after it; `biased`
    /// reads the answers first. So when the answers are still incomplete at a notice, it came
    /// before their end; one that came after it stays queued for whoever reads next (the
    /// migration sent after these).
    async fn read(
        &mut self,
        first: Pin<Box<SimpleQueryStream>>,
        second: Option<Pin<Box<SimpleQueryStream>>>,
        show: bool,
    ) -> (Answer, Option<Answer>, Vec<ServerMessage>) {
        let work = async {
            let first = counted(first).await;
            let second = match second {
                Some(second) => Some(counted(second).await),
                None => None,
            };
            (first, second)
        };
        tokio::pin!(work);
        let progress = self.progress;
        let notices = &mut self.session.notices;
        let mut mine = Vec::new();
        let (first, second) = loop {
            tokio::select! {
                biased;
                done = &mut work => break done,
                Some((notice, held)) = notices.next_held() => {
                    if show {
                        progress.server_message(&notice);
                    }
                    mine.push(notice);
                    drop(held);
                }
                _ = tokio::time::sleep(RECANCEL) => {
                    if session::interrupted().is_some() {
                        session::cancel_all().await;
                    }
                }
            }
        };
        if session::interrupted().is_some() {
            // The signal's own cancel request may still be on its way: let it land before
            // anything else is sent, or it cancels the bookkeeping that follows.
            session::settle().await;
        }
        (first, second, mine)
    }

    /// Reads what was sent of a migration that will not be committed, and rolls back the
    /// transaction it began, if it began one: then its warnings (passed on when `show`).
    async fn abandon(&mut self, opened: Opened, show: bool) -> Option<Vec<ServerMessage>> {
        let ((done, _), _, warnings) = self.read(opened.answers, None, show).await;
        if done >= 1 {
            let _ = self.session.client.batch_execute("ROLLBACK").await;
            return Some(warnings);
        }
        None
    }

    /// Writes the warnings a migration's tracking rows could not carry (it was the chain's
    /// last, or the one after it failed).
    async fn pay(
        &self,
        owed: Option<(&Migration, Vec<ServerMessage>)>,
        direction: Direction,
    ) -> anyhow::Result<()> {
        match owed {
            Some((migration, warnings)) => {
                keep_warnings(&self.session.client, migration, direction, &warnings).await
            }
            None => Ok(()),
        }
    }

    /// What the answers to a migration's two messages say: its error and where it was, as
    /// `flight` reports them; whether its transaction began (its `BEGIN` ran: a syntax
    /// error anywhere in the opening message stops all of it); and the error of the reset
    /// after a `COMMIT` that took effect (the migration is done, and the session must be reset
    /// before the next one).
    fn attribute(
        &self,
        head: &Head,
        section: &Section,
        statements: &[Statement<'_>],
        (opened_done, opened): Answer,
        (closed_done, closed): Answer,
        record_len: usize,
    ) -> (Flight, bool, Option<tokio_postgres::Error>) {
        let mut flight = Flight {
            error: None,
            warnings: Vec::new(),
            unseen: false,
            stopped_before: None,
            ended_early: false,
        };
        if let Err(e) = opened {
            let part = if opened_done == 0 && is_connection_lost(&e) {
                Part::Setup
            } else if opened_done == 0 {
                // Nothing of the message ran: an error the whole message failed with before
                // its first statement (a syntax error anywhere in the section).
                in_body(
                    section,
                    statements,
                    0,
                    &e,
                    self.session.positions_in_bytes,
                    head.lead,
                )
            } else if opened_done < head.len {
                if opened_done + head.settings >= head.len {
                    Part::Settings
                } else {
                    Part::Setup
                }
            } else {
                let done = opened_done - head.len;
                flight.unseen = done >= statements.len();
                in_body(
                    section,
                    statements,
                    done,
                    &e,
                    self.session.positions_in_bytes,
                    head.lead,
                )
            };
            // Whether the tracking rows found the transaction ended matters only if the
            // migration's transaction began.
            flight.ended_early = opened_done >= 1
                && closed
                    .as_ref()
                    .err()
                    .and_then(|e| e.code())
                    .is_some_and(|c| c.code() == ENDED_EARLY);
            flight.error = Some((part, e));
            return (flight, opened_done >= 1, None);
        }
        if let Err(e) = closed {
            if closed_done > record_len {
                // The reset after a COMMIT that took effect: the migration is done.
                return (flight, true, Some(e));
            }
            flight.ended_early = e.code().is_some_and(|c| c.code() == ENDED_EARLY);
            let part = if closed_done == record_len {
                Part::Commit
            } else if closed_done == DEFERRED_AT {
                Part::Deferred
            } else {
                Part::Record
            };
            flight.error = Some((part, e));
        }
        (flight, true, None)
    }
}
