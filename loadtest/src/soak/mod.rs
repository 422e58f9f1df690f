//! `tickwire-loadtest soak`: a long run with churn that checks the broker
//! stays healthy (issue 24).
//!
//! The steady part is the load generator's own: checked subscribers on the
//! receiving threads (`scenario::Receivers`, gap tracking per topic, every
//! quote counted against what the publishers sent) and paced publishers
//! (`publisher::run`, reconnecting: `producers`). Around them, churn actors
//! on the blocking client (`session`, with per-topic seq tracking in
//! `streams`): connections opening and closing and resubscribers
//! (`conns`), slow and stalled readers (`readers`), resumers (`resume`);
//! with `--hs256-secret-file` every connection, checked ones included,
//! sends tokens minted by `crate::tokens` and refreshes them. A sampler
//! (`sampler`, `metrics`) records the broker's RSS, open fds and queue
//! depths. With `--tls` every subscriber connection is wss (the checked
//! subscribers, the churn actors) and so are the scrapes of `/metrics`
//! (the producers' ingest stays plain), all sharing one client config, so
//! reconnects resume their TLS sessions (unless `--no-resume`); the checked
//! subscribers
//! update their keys now and then, asking the broker to do the same
//! (`--tls-key-update-every`). The report (`report`) is the usual one for the checked
//! subscribers plus a `soak` section with the samples' start/end/max and
//! slopes (`series`), the churn counts (`counts`) and the verdict. The
//! plan and its checks: `plan`.
//!
//! Every actor stops at the end of `--duration` and each of its loops is
//! bounded in steps too (`Plan::max_steps`); every blocking wait has a
//! timeout.

mod conns;
mod counts;
mod metrics;
mod plan;
mod producers;
mod readers;
pub mod report;
mod resume;
mod sampler;
mod series;
mod session;
mod streams;
mod table;

use std::sync::Mutex;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

pub use counts::Counts;
pub use plan::Plan;
pub use report::SoakReport;

use crate::cli::SoakArgs;
use crate::publisher::PubResult;
use crate::receiver::RecvConfig;
use crate::report::Report;
use crate::scenario::{self, LoadSpec, Outcome, Receivers};
use crate::{sys, Error};
use counts::Env;

/// Runs the soak of `load` (the steady part, scenario "soak") and `args`.
pub fn run(load: LoadSpec, args: &SoakArgs) -> Result<Report, Error> {
    let plan = Plan::new(load, args)?;
    sys::ensure_fd_limit(plan.connections() + 256)?;
    if let Some(pid) = plan.broker_pid {
        sys::rss_bytes(pid)?;
        sys::open_fds(pid)?;
    }
    let load = &plan.load;
    let receivers = Receivers::connect(load)?;
    let tally = Mutex::new(Counts::default());
    let ru0 = sys::rusage_self();
    let t0 = Instant::now();
    let t0_ns = sys::wall_ns();
    let end = t0 + load.duration;
    let sampler = sampler::Sampler::start(&plan, receivers.shared.clone(), t0)?;
    receivers.measure();
    let env = Env::new(&plan, end, &tally);
    let pcfg = scenario::pub_config(load);
    let topic_sets = TopicSets::new(&receivers.cfg, &plan);

    let (pub_results, sampled) = std::thread::scope(|s| -> Result<_, Error> {
        let (env, pcfg) = (&env, &pcfg);
        let pubs: Vec<_> = (0..load.publishers)
            .map(|p| {
                spawn(s, format!("lt-pub-{p}"), move || {
                    producers::run(env, pcfg, p)
                })
            })
            .collect::<Result<_, _>>()?;
        let actors = spawn_churn(s, env, &topic_sets)?;
        progress(env, &receivers);
        // The last sample at the end of the window, before any teardown.
        let sampled = sampler.stop();
        let pub_results = pubs
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| PubResult {
                    error: Some("publisher thread panicked".into()),
                    ..PubResult::default()
                })
            })
            .collect::<Vec<_>>();
        // Quotes still on their way to the checked subscribers.
        let expected = scenario::expected_deliveries(
            load,
            &receivers.cfg,
            &pub_results,
            receivers.ready,
            receivers.opened,
        );
        receivers.drain(expected, load.drain);
        for (name, h) in actors {
            if h.join().is_err() {
                env.problem(format!("{name} panicked"));
            }
        }
        Ok((pub_results, sampled))
    })?;

    let (cfg, opened, ready, setup_s) = (
        receivers.cfg.clone(),
        receivers.opened,
        receivers.ready,
        receivers.setup_s,
    );
    let shared = receivers.shared.clone();
    let results = receivers.stop();
    // Every connection of the run is closed: what the broker still holds.
    let after = sampler::after(&plan, &shared, t0);
    let mut churn = tally.into_inner().unwrap_or_else(|e| e.into_inner());
    churn.tokens.authed += results.iter().map(|r| r.authed).sum::<u64>();
    churn.tokens.refreshes += results.iter().map(|r| r.auth_refreshes).sum::<u64>();
    churn.tls_key_updates += results.iter().map(|r| r.tls_key_updates).sum::<u64>();
    let wall = t0.elapsed().as_secs_f64();
    let ru1 = sys::rusage_self();
    let outcome = Outcome {
        results,
        pub_results,
        opened,
        ready,
        setup_s,
        rss_before: None,
        rss_after: None,
        t0_ns,
        wall,
        ru0,
        ru1,
    };
    let mut report = scenario::aggregate(load, &cfg, outcome);
    report.params = plan.params();
    let mut warnings = Vec::new();
    if let Some(path) = &plan.samples_csv {
        if let Err(e) = sampler::write_csv(path, &sampled.samples) {
            warnings.push(format!("--samples-csv: {e}"));
        }
    }
    let mut soak = SoakReport::new(&plan, sampled, after, churn, &report);
    soak.warnings.extend(warnings);
    report.soak = Some(Box::new(soak));
    Ok(report)
}

/// The topics of each churn connection: K consecutive topics, as the
/// checked subscribers have, numbered after them; every topic (`PREFIX*`)
/// for slow and stalled readers.
struct TopicSets {
    resumers: Vec<Vec<String>>,
    resubscribers: Vec<Vec<String>>,
    slow_readers: Vec<Vec<String>>,
    stalled_readers: Vec<Vec<String>>,
    /// One per checked subscriber's set: the churn connections cycle through them.
    pool: Vec<Vec<String>>,
}

impl TopicSets {
    fn new(cfg: &RecvConfig, plan: &Plan) -> TopicSets {
        let set =
            |n: usize| -> Vec<String> { cfg.topics_of(n).map(|i| cfg.topic_name(i)).collect() };
        let (checked, c) = (plan.load.subscribers, &plan.churn);
        TopicSets {
            resumers: (0..c.resumers).map(|r| set(checked + r)).collect(),
            resubscribers: (0..c.resubscribers)
                .map(|r| set(checked + c.resumers + r))
                .collect(),
            slow_readers: vec![vec![plan.every_topic()]; c.slow_readers],
            stalled_readers: vec![vec![plan.every_topic()]; c.stalled_readers],
            pool: (0..checked.max(1)).map(set).collect(),
        }
    }
}

type Actor<'scope> = (String, ScopedJoinHandle<'scope, ()>);
/// A churn actor with its own connection: number `n`, on `topics`.
type Streamer<'a> = fn(&Env<'a>, usize, &[String]);

fn spawn<'scope, 'env, T: Send + 'scope>(
    s: &'scope Scope<'scope, 'env>,
    name: String,
    f: impl FnOnce() -> T + Send + 'scope,
) -> Result<ScopedJoinHandle<'scope, T>, Error> {
    std::thread::Builder::new()
        .name(name.clone())
        .spawn_scoped(s, f)
        .map_err(|e| Error::msg(format!("spawn {name}: {e}")))
}

/// Starts every churn actor of the plan.
fn spawn_churn<'scope, 'env, 'a: 'scope>(
    s: &'scope Scope<'scope, 'env>,
    env: &'scope Env<'a>,
    sets: &'scope TopicSets,
) -> Result<Vec<Actor<'scope>>, Error> {
    let mut actors = Vec::new();
    let mut add = |name: String, f: Box<dyn FnOnce() + Send + 'scope>| -> Result<(), Error> {
        let h = spawn(s, name.clone(), f)?;
        actors.push((name, h));
        Ok(())
    };
    add(
        "lt-soak-conns".into(),
        Box::new(|| conns::open_close(env, &sets.pool)),
    )?;
    let kinds: [(&str, &[Vec<String>], Streamer<'a>); 4] = [
        ("resub", &sets.resubscribers, conns::resubscribe),
        ("resume", &sets.resumers, resume::run),
        ("slow", &sets.slow_readers, readers::slow),
        ("stall", &sets.stalled_readers, readers::stalled),
    ];
    for (kind, sets, actor) in kinds {
        for (n, topics) in sets.iter().enumerate() {
            let f = move || actor(env, n, topics);
            add(format!("lt-soak-{kind}-{n}"), Box::new(f))?;
        }
    }
    Ok(actors)
}

/// Waits for the end of the run, with a progress bar (not with `--quiet`
/// or without a terminal).
fn progress(env: &Env<'_>, receivers: &Receivers) {
    let load = &env.plan.load;
    let pb = scenario::bar(
        load.quiet,
        load.duration.as_millis() as u64,
        "{spinner} [{bar:30}] {elapsed}/{duration} {msg}",
    );
    let started = Instant::now();
    while env.running() {
        env.sleep_until(Instant::now() + Duration::from_millis(500));
        let mut line = String::new();
        env.count(|c| {
            line = format!(
                "checked {} quotes; churn {} opened, {} resumes, {} problems",
                receivers.deliveries(),
                c.connections.opened,
                c.resumes.attempted,
                c.errors.total
            )
        });
        pb.set_position(started.elapsed().as_millis() as u64);
        pb.set_message(line);
    }
    pb.finish_and_clear();
}
