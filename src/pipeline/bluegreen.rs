//! `bluegreen_switch` steps: find the live colour, probe the other one
//! `healthy_probes` rounds in a row (every probe of the colour must pass,
//! within its `max_latency`), refuse to flip when a round fails, flip (a
//! link repointed atomically, an HTTP request, or a program), then check
//! that the new live colour is live and answers its probes.
//!
//! A refusal changes nothing and may be retried. Once a flip was tried
//! every failure is final, never retried: a retry would find the new
//! colour live and flip back to the release being rolled back.
//!
//! The probes are [`HealthProbe`]s, the target probes' own code, built
//! from each colour's `probe` tables; they only read, so shadow mode runs
//! the live-colour lookup and the rounds as the step's dry run. How the
//! live colour is told and changed is in `bluegreen/live.rs`.

mod live;

use super::{PipelineDeps, RollbackContext, StepError, StepResult, http, stopped};
use crate::config::{BlueGreenSwitchStep, ColorConfig, StepAction, StepConfig};
use crate::probe::HealthProbe;
use crate::template;
use live::{flip, live_color, live_from_link};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Time a flip and its check get even when the rounds used up the step's
/// `timeout`: both stay inside the runner's backstop.
const FLIP_AT_LEAST: Duration = Duration::from_secs(1);
/// See [`FLIP_AT_LEAST`].
const CHECK_AT_LEAST: Duration = Duration::from_secs(2);

/// Runs the step within `timeout`; `stop` cuts the rounds short.
pub(super) async fn execute(
    step: &BlueGreenSwitchStep,
    timeout: Duration,
    ctx: &RollbackContext,
    deps: &PipelineDeps,
    mut stop: watch::Receiver<bool>,
) -> StepResult {
    let deadline = crate::time::deadline(Instant::now(), timeout);
    let left = |at_least: Duration| {
        deadline
            .saturating_duration_since(Instant::now())
            .max(at_least)
    };
    let service = service(step, ctx);
    let choose = async {
        let live = live_color(step, ctx, deps, timeout).await?;
        let other = other_color(step, &live)?;
        if let Err(evidence) = rounds(step, &other, deps, &mut stop).await {
            if *stop.borrow() {
                return Err(StepError::interrupted(format!(
                    "stopped before flipping {service} from {live} to {other}: rollguard is shutting down; nothing was changed"
                )));
            }
            return Err(StepError::failed(format!(
                "refused to flip {service} from {live} to {other}: {evidence}; nothing was changed"
            )));
        }
        Ok((live, other))
    };
    let (live, other) = match tokio::time::timeout_at(deadline, choose).await {
        Ok(chosen) => chosen?,
        Err(_) => {
            return Err(StepError::timed_out(format!(
                "no healthy colour to flip {service} to within {}; nothing was changed",
                humantime::format_duration(timeout)
            )));
        }
    };
    // From here on every failure is final (see the module docs).
    let permanent = |message: String| StepError {
        retryable: false,
        ..StepError::failed(message)
    };
    if let Err(error) = flip(step, &other, &live, ctx, deps, left(FLIP_AT_LEAST)).await {
        return Err(permanent(format!(
            "flipping {service} from {live} to {other} failed: {}; check which colour is live",
            error.message
        )));
    }
    let check = tokio::time::timeout(left(CHECK_AT_LEAST), async {
        let now_live = live_color(step, ctx, deps, left(CHECK_AT_LEAST))
            .await
            .map_err(|error| error.message)?;
        if now_live != other {
            return Err(format!(
                "after the flip the live colour is {:?}",
                shown(&now_live)
            ));
        }
        round(colors(step, &other)?, deps).await
    })
    .await
    .unwrap_or_else(|_| Err("its check did not finish in time".to_owned()));
    let Err(failure) = check else {
        let rounds = plural(step.healthy_probes, "healthy probe round");
        return Ok(Some(format!(
            "flipped {service} from {live} to {other} after {rounds}; {other} is live and answers its probes"
        )));
    };
    let back = if !step.flip_back {
        format!("did not flip back (`flip_back` is off): {other} stays live")
    } else {
        match flip(step, &live, &other, ctx, deps, left(FLIP_AT_LEAST)).await {
            Ok(_) => format!("flipped back to {live}"),
            Err(error) => format!("flipping back to {live} failed too: {}", error.message),
        }
    };
    Err(permanent(format!(
        "flipped {service} from {live} to {other}, but {other} failed after the flip: {failure}; {back}"
    )))
}

/// Shadow mode's dry run: which colour is live and whether the other one
/// passes its rounds; never flips. `limit` bounds it.
pub(super) async fn dry_run(
    step: &StepConfig,
    ctx: &RollbackContext,
    deps: &PipelineDeps,
    limit: Duration,
) -> Result<String, String> {
    let StepAction::BluegreenSwitch(s) = &step.action else {
        return Err("not a bluegreen_switch step".to_owned());
    };
    let service = service(s, ctx);
    let mut never = watch::channel(false).1;
    let check = async {
        let live = live_color(s, ctx, deps, limit)
            .await
            .map_err(|error| error.message)?;
        let other = other_color(s, &live).map_err(|error| error.message)?;
        match rounds(s, &other, deps, &mut never).await {
            Ok(()) => Ok(format!(
                "bluegreen_switch: {other} answered {}: {service} would flip from {live} to {other} (dry run)",
                plural(s.healthy_probes, "healthy probe round")
            )),
            Err(evidence) => Err(format!(
                "bluegreen_switch: would refuse to flip {service} from {live} to {other}: {evidence} (dry run)"
            )),
        }
    };
    tokio::time::timeout(limit, check)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "bluegreen_switch: no answer within {} (dry run)",
                humantime::format_duration(limit)
            ))
        })
}

/// One line of what the step would do ([`describe`](super::describe())).
/// Reads the link of a switch by `link`; nothing else.
pub fn describe(step: &BlueGreenSwitchStep, ctx: &RollbackContext) -> String {
    let service = service(step, ctx);
    let rounds = plural(step.healthy_probes, "healthy probe");
    let urls = |name: &str| {
        step.colors
            .get(name)
            .map(|c| {
                let urls: Vec<&str> = c.probe.iter().map(|p| p.url.as_str()).collect();
                urls.join(", ")
            })
            .unwrap_or_default()
    };
    if let Some(link) = &step.link {
        let chosen = live_from_link(step, link).and_then(|live| {
            let other = other_color(step, &live)?;
            Ok((live, other))
        });
        return match chosen {
            Ok((live, other)) => format!(
                "flip {service} from {live} to {other} after {rounds} of {}, by repointing {}",
                urls(&other),
                link.display()
            ),
            Err(error) => format!(
                "flip {service} to the colour that is not live after {rounds} of its probes, by repointing {} ({})",
                link.display(),
                error.message
            ),
        };
    }
    let how = match (&step.live_url, &step.live_argv) {
        (Some(url), _) => format!(
            "as GET {} says",
            template::render_url(url, &ctx.vars()).unwrap_or_else(|_| url.clone())
        ),
        (None, Some(argv)) => format!("as {} says", argv.join(" ")),
        (None, None) => "<no live colour source>".to_owned(),
    };
    let flip = match (&step.flip_http, &step.flip_argv) {
        (Some(h), _) => format!(
            "{} {}",
            http::method(h),
            h.url
                .clone()
                .or_else(|| h.url_env.as_ref().map(|v| format!("${v}")))
                .unwrap_or_default()
        ),
        (None, Some(argv)) => format!("running {}", argv.join(" ")),
        (None, None) => "<no flip>".to_owned(),
    };
    let pair: Vec<String> = step
        .colors
        .keys()
        .map(|name| format!("{name} ({})", urls(name)))
        .collect();
    format!(
        "flip {service} from the live colour ({how}) to the other of {} after {rounds}, by {flip}",
        pair.join(" and ")
    )
}

/// The service's name in messages: `service`, else the target's.
fn service<'a>(step: &'a BlueGreenSwitchStep, ctx: &'a RollbackContext) -> &'a str {
    step.service.as_deref().unwrap_or(&ctx.target)
}

/// A colour's name as another service answered it, cut for a message.
fn shown(name: &str) -> String {
    const MOST: usize = 64;
    if name.chars().count() <= MOST {
        name.to_owned()
    } else {
        format!("{}...", name.chars().take(MOST).collect::<String>())
    }
}

/// "1 healthy probe", "3 healthy probes".
fn plural(n: u32, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The colour configured as `name`.
fn colors<'a>(step: &'a BlueGreenSwitchStep, name: &str) -> Result<&'a ColorConfig, String> {
    step.colors
        .get(name)
        .ok_or_else(|| format!("no colour `{name}` is configured"))
}

/// The colour that is not `live`.
fn other_color(step: &BlueGreenSwitchStep, live: &str) -> Result<String, StepError> {
    if !step.colors.contains_key(live) {
        let known: Vec<&str> = step.colors.keys().map(String::as_str).collect();
        return Err(StepError::failed(format!(
            "the live colour is {:?}, which is none of {}",
            shown(live),
            known.join(", ")
        )));
    }
    let mut others = step.colors.keys().filter(|name| *name != live);
    match (others.next(), others.next()) {
        (Some(other), None) => Ok(other.clone()),
        _ => Err(StepError::permanent(
            "a blue-green switch needs exactly two colours",
        )),
    }
}

/// `healthy_probes` rounds of `name`'s probes, `probe_interval` apart;
/// the first failed round's evidence when one fails.
async fn rounds(
    step: &BlueGreenSwitchStep,
    name: &str,
    deps: &PipelineDeps,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let color = colors(step, name)?;
    let total = step.healthy_probes;
    for n in 1..=total {
        if n > 1 {
            tokio::select! {
                () = tokio::time::sleep(step.probe_interval) => {}
                () = stopped(stop) => return Err("rollguard is shutting down".to_owned()),
            }
        }
        round(color, deps)
            .await
            .map_err(|evidence| format!("{name} failed probe round {n} of {total}: {evidence}"))?;
    }
    Ok(())
}

/// Every probe of `color` once; why the first failing one failed.
async fn round(color: &ColorConfig, deps: &PipelineDeps) -> Result<(), String> {
    for config in &color.probe {
        let outcome = HealthProbe::new(config, deps.http.clone()).check().await;
        let url = &config.url;
        if !outcome.ok {
            let reason = outcome.error.unwrap_or_default();
            return Err(format!("{} ({url}): {reason}", config.name));
        }
        if let Some(max) = config.max_latency.filter(|max| outcome.latency > *max) {
            return Err(format!(
                "{} ({url}): answered in {}, over max_latency {}",
                config.name,
                crate::http::human_duration(outcome.latency),
                crate::http::human_duration(max)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> BlueGreenSwitchStep {
        let step: StepConfig = toml::from_str(
            "phase = 'rollback'\nkind = 'bluegreen_switch'\nlive_argv = ['/bin/true']\nflip_argv = ['/bin/true']\ncolors.blue.probe = []\ncolors.green.probe = []",
        )
        .expect("a valid step");
        match step.action {
            StepAction::BluegreenSwitch(s) => s,
            other => panic!("not a switch: {other:?}"),
        }
    }

    #[test]
    fn the_other_colour_is_the_one_not_live_and_odd_answers_are_cut() {
        let step = pair();
        assert_eq!(other_color(&step, "blue").expect("blue is known"), "green");
        assert_eq!(other_color(&step, "green").expect("green is known"), "blue");
        let long = "x".repeat(5000);
        let error = other_color(&step, &long).expect_err("not a colour");
        assert!(error.retryable);
        assert!(error.message.len() < 200, "{}", error.message);
        assert!(
            error
                .message
                .ends_with("...\", which is none of blue, green")
        );
    }

    #[test]
    fn counts_read_as_words() {
        assert_eq!(plural(1, "healthy probe"), "1 healthy probe");
        assert_eq!(plural(3, "healthy probe round"), "3 healthy probe rounds");
    }
}
