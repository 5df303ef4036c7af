//! `[[variants]]`: the same run (its phases, on a fresh topology each) once
//! per named variant of the client's retry policy and the gateway's
//! concurrency limit, side by side in one report.
//!
//! Takes the raw list and hands on [`VariantSpec`]s, or the first error
//! located. A variant's `retry` replaces `[client] retry` and its
//! `concurrency` the `[gateway]` one; what it leaves out it takes from the
//! scenario. Running them is `experiment::variants`.

use contend_gateway::ConcurrencyRule;
use contend_gateway::config::{RawConcurrency, RawPolicies};
use toml::Spanned;

use super::GatewayKind;
use super::build::Ctx;
use super::check::{check_name, quoted};
use super::retry::{RawRetry, RetrySpec, build_retry};
use crate::error::Result;

/// Most variants one scenario may list.
pub const MAX_VARIANTS: usize = 16;

/// One variant of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantSpec {
    /// Its name: its subfolder is `variant-NAME`, its row and lines are
    /// labelled with it.
    pub name: String,
    /// Its retry policy instead of `[client] retry` (`max = 0`: none).
    pub retry: Option<RetrySpec>,
    /// Its gateway concurrency limit instead of `[gateway] concurrency`.
    pub concurrency: Option<ConcurrencyRule>,
}

/// `[[variants]]` as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVariant {
    name: Option<Spanned<String>>,
    retry: Option<Spanned<RawRetry>>,
    concurrency: Option<Spanned<RawConcurrency>>,
}

/// The variants, each named once, with their policies validated.
pub(super) fn build_variants(
    ctx: &Ctx,
    raw: Spanned<Vec<Spanned<RawVariant>>>,
    open_run: bool,
    gateway: GatewayKind,
) -> Result<Vec<VariantSpec>> {
    let span = raw.span();
    let list = raw.into_inner();
    if !open_run {
        return Err(ctx.at(
            span,
            "[[variants]] run the phases once per variant: they need experiment = \"run\" with \
             an open-loop load (no --connections); remove them, or the other experiment",
        ));
    }
    let any_concurrency = list.iter().any(|v| v.get_ref().concurrency.is_some());
    if any_concurrency && gateway != GatewayKind::Reference {
        return Err(ctx.at(
            span,
            "a variant's concurrency is the reference gateway's limit: add [gateway] kind = \"reference\" \
             (or remove the variant's concurrency)",
        ));
    }
    if list.is_empty() || list.len() > MAX_VARIANTS {
        return Err(ctx.at(
            span,
            format!(
                "[[variants]] lists {}: give 1 to {MAX_VARIANTS} variants, each with a name",
                list.len()
            ),
        ));
    }
    let mut out: Vec<VariantSpec> = Vec::new();
    for (i, spanned) in list.into_iter().enumerate() {
        let at = spanned.span();
        let v = spanned.into_inner();
        let Some(name) = &v.name else {
            return Err(ctx.at(
                at,
                format!("variant {} has no name: add name = \"naive\"", i + 1),
            ));
        };
        ctx.check(name, |n| {
            check_name("variant name", n)?;
            if out.iter().any(|o| &o.name == n) {
                return Err(format!(
                    "variant name {} is used twice: each variant needs its own",
                    quoted(n)
                ));
            }
            Ok(())
        })?;
        let label = format!("variant {}", quoted(name.get_ref()));
        let retry = match &v.retry {
            Some(r) => Some(build_retry(ctx, &format!("{label} retry"), r.get_ref())?),
            None => None,
        };
        let concurrency = match v.concurrency {
            Some(c) => {
                let policies = RawPolicies {
                    concurrency: Some(c),
                    ..RawPolicies::default()
                };
                policies
                    .validate(&label)
                    .map_err(|(at, m)| ctx.at(at, m))?
                    .concurrency
            }
            None => None,
        };
        out.push(VariantSpec {
            name: name.get_ref().clone(),
            retry,
            concurrency,
        });
    }
    Ok(out)
}
