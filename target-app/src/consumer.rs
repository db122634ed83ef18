//! The coupon consumer group: decides every accepted request, first come first served.
//!
//! `single` mode writes one transaction per record, as the incident did; `batch` mode one
//! multi-row insert per batch. Both run the same decision code over a slice of records, so the
//! only difference between the presets is how many records share a statement. Offsets are
//! committed only after the transaction commits, and a redelivered request id is skipped, so a
//! crash between the two never issues a coupon twice.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::config::ConsumerMode;
use crate::coupons::CouponRequest;
use crate::AppState;

/// How long a batch waits for more records once it has its first one.
const BATCH_LINGER: Duration = Duration::from_millis(20);

/// Spawns `consumer_concurrency` members of the group; they stop when `shutdown` flips.
pub fn spawn(
    state: Arc<AppState>,
    shutdown: watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, rdkafka::error::KafkaError> {
    let mut handles = Vec::new();
    for member in 0..state.config.consumer_concurrency {
        let consumer: StreamConsumer = crate::kafka::client_config(&state.config.kafka)
            .set("group.id", &state.config.consumer_group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // A paused consumer stops polling; it must stay in the group while paused.
            .set("max.poll.interval.ms", "86400000")
            .set("session.timeout.ms", "10000")
            .create()?;
        consumer.subscribe(&[&state.config.coupon_topic])?;
        handles.push(tokio::spawn(run_member(
            member,
            consumer,
            state.clone(),
            shutdown.clone(),
        )));
    }
    Ok(handles)
}

async fn run_member(
    member: usize,
    consumer: StreamConsumer,
    state: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let batch_size = match state.config.consumer_mode {
        ConsumerMode::Single => 1,
        ConsumerMode::Batch => state.config.batch_size,
    };
    let topic = state.config.coupon_topic.clone();
    loop {
        if *shutdown.borrow() {
            break;
        }
        if state.faults.consumer_paused.load(Relaxed) {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let first = tokio::select! {
            m = consumer.recv() => m,
            _ = shutdown.changed() => continue,
        };
        let mut batch: Vec<(i32, i64, Option<CouponRequest>)> = Vec::with_capacity(batch_size);
        match first {
            Ok(m) => batch.push((m.partition(), m.offset(), decode(m.payload()))),
            Err(e) => {
                tracing::warn!(member, error = %e, "consumer receive failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        let deadline = tokio::time::Instant::now() + BATCH_LINGER;
        while batch.len() < batch_size {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(m)) => batch.push((m.partition(), m.offset(), decode(m.payload()))),
                _ => break,
            }
        }
        // A pause that began while we waited in recv() holds this batch undecided and
        // uncommitted, so the paused group's lag counts it.
        while state.faults.consumer_paused.load(Relaxed) && !*shutdown.borrow() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let requests: Vec<CouponRequest> = batch.iter().filter_map(|(_, _, r)| r.clone()).collect();
        // Retry the write until it lands: a record is never skipped, and its offset is never
        // committed before its decision is stored.
        let mut attempt = 0u32;
        while let Err(e) = decide(&state, &requests).await {
            attempt += 1;
            tracing::warn!(member, attempt, error = %e, "coupon batch write failed; retrying");
            if *shutdown.borrow() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt.min(20)))).await;
        }
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        for (p, o, _) in &batch {
            let e = next.entry(*p).or_insert(o + 1);
            *e = (*e).max(o + 1);
        }
        let mut tpl = TopicPartitionList::new();
        for (p, o) in next {
            let _ = tpl.add_partition_offset(&topic, p, Offset::Offset(o));
        }
        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
            tracing::warn!(member, error = %e, "offset commit failed (records will be redelivered and skipped)");
        }
    }
}

fn decode(payload: Option<&[u8]>) -> Option<CouponRequest> {
    let decoded = payload.and_then(|p| serde_json::from_slice(p).ok());
    if decoded.is_none() {
        tracing::warn!("skipping a record that is not a coupon request");
    }
    decoded
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Issued,
    Rejected(&'static str),
}

/// Decides a batch in one transaction. The costly insert happens before the coupon row is
/// locked, so members contend on the connection pool, not on one row lock.
async fn decide(state: &AppState, batch: &[CouponRequest]) -> Result<(), crate::error::ApiError> {
    if batch.is_empty() {
        return Ok(());
    }
    let db = &state.db;
    let cls = |e| db.classify(e);
    let mut tx = db.begin().await?;

    let ids: Vec<&str> = batch.iter().map(|r| r.request_id.as_str()).collect();
    let mut q =
        sqlx::QueryBuilder::new("SELECT request_id FROM coupon_requests WHERE request_id IN (");
    let mut sep = q.separated(", ");
    for id in &ids {
        sep.push_bind(*id);
    }
    sep.push_unseparated(")");
    let done: HashSet<String> = q
        .build_query_as::<(String,)>()
        .fetch_all(&mut *tx)
        .await
        .map_err(cls)?
        .into_iter()
        .map(|r| r.0)
        .collect();
    // Not decided yet, and each request once: a producer retry can put one request on the
    // topic twice, and both copies can arrive in one batch.
    let mut seen: HashSet<&str> = HashSet::new();
    let fresh: Vec<&CouponRequest> = batch
        .iter()
        .filter(|r| !done.contains(&r.request_id) && seen.insert(r.request_id.as_str()))
        .collect();
    if fresh.is_empty() {
        return tx.commit().await.map_err(cls);
    }

    let mut holders: HashSet<(u64, u64)> = HashSet::new();
    for (coupon, users) in group_by_coupon(&fresh) {
        let mut q = sqlx::QueryBuilder::new("SELECT user_id FROM user_coupons WHERE coupon_id = ");
        q.push_bind(coupon).push(" AND user_id IN (");
        let mut sep = q.separated(", ");
        for u in &users {
            sep.push_bind(*u);
        }
        sep.push_unseparated(")");
        for (u,) in q
            .build_query_as::<(u64,)>()
            .fetch_all(&mut *tx)
            .await
            .map_err(cls)?
        {
            holders.insert((u, coupon));
        }
    }

    // The incident's slow INSERT (auto-increment lock contention): paid once per statement.
    let cost = state.config.insert_cost_ms + state.faults.consumer_insert_delay_ms.load(Relaxed);
    if cost > 0 {
        tokio::time::sleep(Duration::from_millis(cost)).await;
    }

    let mut remaining: HashMap<u64, i64> = HashMap::new();
    for coupon in group_by_coupon(&fresh).keys() {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT total_quantity, issued FROM coupons WHERE id = ? FOR UPDATE")
                .bind(coupon)
                .fetch_optional(&mut *tx)
                .await
                .map_err(cls)?;
        if let Some((total, issued)) = row {
            remaining.insert(*coupon, total - issued);
        }
    }
    let outcomes: Vec<Outcome> = fresh
        .iter()
        .map(|r| judge(r, &mut holders, &mut remaining))
        .collect();
    let issued: Vec<&CouponRequest> = fresh
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| **o == Outcome::Issued)
        .map(|(r, _)| *r)
        .collect();

    if !issued.is_empty() {
        let mut ins = sqlx::QueryBuilder::new("INSERT INTO user_coupons (user_id, coupon_id) ");
        ins.push_values(&issued, |mut b, r| {
            b.push_bind(r.user_id).push_bind(r.coupon_id);
        });
        ins.build().execute(&mut *tx).await.map_err(cls)?;
        let mut per_coupon: HashMap<u64, i64> = HashMap::new();
        for r in &issued {
            *per_coupon.entry(r.coupon_id).or_default() += 1;
        }
        for (coupon, n) in per_coupon {
            sqlx::query("UPDATE coupons SET issued = issued + ? WHERE id = ?")
                .bind(n)
                .bind(coupon)
                .execute(&mut *tx)
                .await
                .map_err(cls)?;
        }
    }
    let mut rec = sqlx::QueryBuilder::new("INSERT INTO coupon_requests (request_id, user_id, coupon_id, status, reason, accepted_at) ");
    rec.push_values(fresh.iter().zip(&outcomes), |mut b, (r, o)| {
        let (status, reason) = match o {
            Outcome::Issued => ("issued", None),
            Outcome::Rejected(why) => ("rejected", Some(*why)),
        };
        b.push_bind(&r.request_id)
            .push_bind(r.user_id)
            .push_bind(r.coupon_id)
            .push_bind(status)
            .push_bind(reason)
            .push("FROM_UNIXTIME(")
            .push_bind_unseparated(r.accepted_at_ms as f64 / 1000.0)
            .push_unseparated(")");
    });
    rec.build().execute(&mut *tx).await.map_err(cls)?;
    tx.commit().await.map_err(cls)?;

    let n_issued = issued.len() as u64;
    state.metrics.consumer_issued.fetch_add(n_issued, Relaxed);
    state
        .metrics
        .consumer_rejected
        .fetch_add(fresh.len() as u64 - n_issued, Relaxed);
    Ok(())
}

fn group_by_coupon(batch: &[&CouponRequest]) -> BTreeMap<u64, Vec<u64>> {
    let mut m: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for r in batch {
        m.entry(r.coupon_id).or_default().push(r.user_id);
    }
    m
}

/// First come, first served: a user holding the coupon (before or earlier in this batch) is
/// rejected, and nothing is issued past the coupon's quantity.
fn judge(
    r: &CouponRequest,
    holders: &mut HashSet<(u64, u64)>,
    remaining: &mut HashMap<u64, i64>,
) -> Outcome {
    let Some(left) = remaining.get_mut(&r.coupon_id) else {
        return Outcome::Rejected("unknown_coupon");
    };
    if holders.contains(&(r.user_id, r.coupon_id)) {
        return Outcome::Rejected("already_issued");
    }
    if *left <= 0 {
        return Outcome::Rejected("sold_out");
    }
    *left -= 1;
    holders.insert((r.user_id, r.coupon_id));
    Outcome::Issued
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(user: u64) -> CouponRequest {
        CouponRequest {
            request_id: format!("r{user}"),
            user_id: user,
            coupon_id: 1,
            accepted_at_ms: 0,
        }
    }

    #[test]
    fn judge_is_first_come_first_served() {
        let mut holders = HashSet::from([(9, 1)]);
        let mut remaining = HashMap::from([(1, 2)]);
        let got: Vec<Outcome> = [req(1), req(1), req(9), req(2), req(3)]
            .iter()
            .map(|r| judge(r, &mut holders, &mut remaining))
            .collect();
        assert_eq!(
            got,
            vec![
                Outcome::Issued,
                Outcome::Rejected("already_issued"),
                Outcome::Rejected("already_issued"),
                Outcome::Issued,
                Outcome::Rejected("sold_out")
            ]
        );
        let unknown = CouponRequest {
            coupon_id: 7,
            ..req(4)
        };
        assert_eq!(
            judge(&unknown, &mut holders, &mut remaining),
            Outcome::Rejected("unknown_coupon")
        );
    }
}
