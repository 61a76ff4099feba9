// SPDX-License-Identifier: GPL-2.0

//! Runs the model of the livepatch world (`model.rs`) over the shared
//! planning code: exhaustively up to a depth, randomly for longer, and
//! against deliberately broken plans that must be caught.

use crate::model::*;
use crate::state_plan::{self as plan, Callback, PatchView, Progress, Step, Target};
use crate::state_rules::{StateDesc, StateId};
use std::time::Instant;

/// Exploration depth of the exhaustive runs.
const DEPTH: usize = 8;

/// Three functions (the last in the module), two tasks, three state ids.
fn universe(patches: Vec<PatchDef>) -> Universe {
    Universe {
        patches,
        funcs: vec![false, false, true],
        tasks: 2,
        nstates: 3,
    }
}

fn patch(replace: bool, funcs: &[u8], states: &[StateDesc]) -> PatchDef {
    PatchDef {
        replace,
        funcs: funcs.to_vec(),
        states: states.to_vec(),
    }
}

/// The universes of the exhaustive runs: three patches and three states
/// each, together covering stacking, atomic replace of one and of several
/// carriers, block_disable set and lifted, shadow states, legacy states
/// and versions, and (through the operations) failing pre_patch callbacks.
fn universes() -> Vec<(&'static str, Universe)> {
    let (x, y, z) = (st(1), shadow(2), st(3));
    let zb = blocking(3);
    vec![
        (
            // Two stacked patches carry X; a replace without X removes it
            // once (the public proof of concept missed this), takes Z over
            // and lifts its block.
            "stack-then-replace",
            universe(vec![
                patch(false, &[0, 1], &[x, y]),
                patch(false, &[1, 2], &[x, zb]),
                patch(true, &[0], &[z]),
            ]),
        ),
        (
            // Replaces all the way; the last one is incompatible while the
            // blocking Z is installed.
            "replace-chain",
            universe(vec![
                patch(true, &[0, 2], &[x, y]),
                patch(true, &[1], &[y, zb]),
                patch(true, &[0, 1], &[z, x]),
            ]),
        ),
        (
            // A replace between stacked patches, states in several orders.
            "mixed",
            universe(vec![
                patch(false, &[0], &[z, x, y]),
                patch(true, &[0, 1, 2], &[y, x]),
                patch(false, &[2], &[x, z]),
            ]),
        ),
        (
            // Legacy states: versions must not go down, a replace must not
            // drop one.
            "legacy",
            universe(vec![
                patch(false, &[0, 1], &[legacy(1, 1), y]),
                patch(true, &[1], &[legacy(1, 2), z]),
                patch(true, &[2], &[legacy(1, 1), y, z]),
            ]),
        ),
    ]
}

fn explore_all<L: Plan + ?Sized>(plan: &L, depth: usize) -> Result<Stats, (String, Failure)> {
    let mut total = Stats::default();
    for (name, u) in universes() {
        let s = explore(&u, plan, depth).map_err(|f| (name.to_string(), f))?;
        total.worlds += s.worlds;
        total.ops += s.ops;
    }
    Ok(total)
}

#[test]
fn exhaustive() {
    let t = Instant::now();
    let mut total = Stats::default();
    for (name, u) in universes() {
        let s = match explore(&u, &Real, DEPTH) {
            Ok(s) => s,
            Err(f) => panic!("universe {name} ({}): {f}", describe(&u)),
        };
        eprintln!(
            "klp-model: exhaustive, universe {name}: depth {DEPTH}, {} worlds, {} operations",
            s.worlds, s.ops
        );
        total.worlds += s.worlds;
        total.ops += s.ops;
    }
    eprintln!(
        "klp-model: exhaustive: {} universes, depth {DEPTH}: {} distinct worlds, {} operations checked in {:.1?}",
        universes().len(),
        total.worlds,
        total.ops,
        t.elapsed()
    );
    assert!(total.worlds > 1000);
}

#[test]
fn randomized() {
    let t = Instant::now();
    let mut rng = Rng::new(0x6b6c_705f_6d6f_6465);
    let (mut runs, mut ops) = (0, 0);
    for _ in 0..300 {
        let (np, ns) = (2 + rng.below(3), 3 + rng.below(2));
        let u = Universe::random(&mut rng, np, 4, ns, 3);
        let seed = rng.next_u64();
        let mut r = Rng::new(seed);
        match random_run(&u, &Real, &mut r, 200) {
            Ok(n) => ops += n,
            Err(f) => panic!("random universe {} (seed {seed:#x}): {f}", describe(&u)),
        }
        runs += 1;
    }
    eprintln!(
        "klp-model: randomized: {runs} runs of 200 operations, {ops} changed the world, in {:.1?}",
        t.elapsed()
    );
}

/// The plan must be caught when broken: each mutant breaks one rule.
fn must_fail<L: Plan>(name: &str, mutant: &L) {
    let t = Instant::now();
    match explore_all(mutant, DEPTH) {
        Ok(s) => panic!("mutant '{name}' not caught ({} worlds)", s.worlds),
        Err((u, f)) => eprintln!(
            "klp-model: mutant '{name}' caught in {:.1?}, universe {u}: {f}",
            t.elapsed()
        ),
    }
}

/// Also runs `pre_patch` of the states it takes over.
struct PrePatchTakenOver;
impl Plan for PrePatchTakenOver {
    fn enable(&self, v: &View<'_>, p: u8, run: RunFallible<'_>) -> (Progress, Result<(), ()>) {
        for s in v.states(p) {
            if plan::carried_by_other(v, p, s.id) {
                let _ = run(Step {
                    patch: p,
                    state: s.id,
                    callback: Callback::PrePatch,
                });
            }
        }
        Progress::enable(v, p, run)
    }
}

#[test]
fn mutant_pre_patch_of_taken_over_state() {
    must_fail("pre_patch of a taken-over state", &PrePatchTakenOver);
}

/// Replaced patches do not count as carriers: a replace introduces again
/// what it takes over.
struct ReplacedNotCarriers;
impl Plan for ReplacedNotCarriers {
    fn enable(&self, v: &View<'_>, p: u8, run: RunFallible<'_>) -> (Progress, Result<(), ()>) {
        if v.replace(p) {
            let only = [p];
            return Progress::enable(&v.with_reg(&only), p, run);
        }
        Progress::enable(v, p, run)
    }
}

#[test]
fn mutant_replaced_patches_not_carriers() {
    must_fail("replaced patches are not carriers", &ReplacedNotCarriers);
}

/// The proof of concept's bug: a state carried by several replaced patches
/// is not removed.
struct SkipShared;
impl SkipShared {
    fn shared(v: &View<'_>, p: u8, id: StateId) -> bool {
        v.patches()
            .filter(|&q| q != p && plan::carries(v, q, id))
            .count()
            > 1
    }
}
impl Plan for SkipShared {
    fn enable(&self, v: &View<'_>, p: u8, run: RunFallible<'_>) -> (Progress, Result<(), ()>) {
        Progress::enable(v, p, |s: Step<u8>| {
            if s.patch != p && Self::shared(v, p, s.state) {
                Ok(())
            } else {
                run(s)
            }
        })
    }
    fn complete_replaced(&self, pr: Progress, v: &View<'_>, p: u8, t: Target, run: Run<'_>) {
        pr.complete_replaced(v, p, t, |s: Step<u8>| {
            if !Self::shared(v, p, s.state) {
                run(s)
            }
        })
    }
}

#[test]
fn mutant_state_of_two_replaced_patches_left_behind() {
    must_fail("state of two replaced patches left behind", &SkipShared);
}

/// Every replaced carrier runs the unpatch side.
struct EveryCarrierUndoes;
impl Plan for EveryCarrierUndoes {
    fn complete_replaced(&self, pr: Progress, v: &View<'_>, p: u8, t: Target, run: Run<'_>) {
        pr.complete_replaced(v, p, t, &mut *run);
        if t == Target::Patched && pr.enabling() {
            for q in v.patches().filter(|&q| q != p) {
                for s in v.states(q) {
                    let runner = plan::removal_runner_on_replace(v, p, s.id);
                    if runner.is_some() && runner != Some(q) {
                        run(Step {
                            patch: q,
                            state: s.id,
                            callback: Callback::PostUnpatch,
                        });
                    }
                }
            }
        }
    }
}

#[test]
fn mutant_every_replaced_carrier_undoes() {
    must_fail("every replaced carrier undoes", &EveryCarrierUndoes);
}

/// The oldest replaced carrier undoes the state instead of the newest.
struct OldestUndoes;
impl Plan for OldestUndoes {
    fn enable(&self, v: &View<'_>, p: u8, run: RunFallible<'_>) -> (Progress, Result<(), ()>) {
        let rev = v.reversed_before(p);
        Progress::enable(&v.with_reg(&rev), p, run)
    }
    fn complete_replaced(&self, pr: Progress, v: &View<'_>, p: u8, t: Target, run: Run<'_>) {
        let rev = v.reversed_before(p);
        pr.complete_replaced(&v.with_reg(&rev), p, t, run)
    }
}

#[test]
fn mutant_oldest_replaced_carrier_undoes() {
    must_fail("the oldest replaced carrier undoes", &OldestUndoes);
}

/// A reversed replace does not give the replaced patches their
/// `post_patch` back.
struct NoPostPatchOnReversedReplace;
impl Plan for NoPostPatchOnReversedReplace {
    fn complete_replaced(&self, pr: Progress, v: &View<'_>, p: u8, t: Target, run: Run<'_>) {
        if t == Target::Patched {
            pr.complete_replaced(v, p, t, run)
        }
    }
}

#[test]
fn mutant_reversed_replace_without_post_patch() {
    must_fail(
        "reversed replace without post_patch",
        &NoPostPatchOnReversedReplace,
    );
}

/// A failing `pre_patch` also undoes the failing state.
struct UndoFailing;
impl Plan for UndoFailing {
    fn enable(&self, v: &View<'_>, p: u8, run: RunFallible<'_>) -> (Progress, Result<(), ()>) {
        let mut failed = None;
        let (pr, r) = Progress::enable(v, p, |s: Step<u8>| {
            let r = run(s);
            if r.is_err() {
                failed = Some(s.state);
            }
            r
        });
        if let Some(id) = failed {
            let _ = run(Step {
                patch: p,
                state: id,
                callback: Callback::PostUnpatch,
            });
        }
        (pr, r)
    }
}

#[test]
fn mutant_failing_pre_patch_undone() {
    must_fail("the failing pre_patch is undone", &UndoFailing);
}

/// block_disable is ignored.
struct IgnoreBlock;
impl Plan for IgnoreBlock {
    fn disable_blocked(&self, _v: &View<'_>, _p: u8) -> Option<StateId> {
        None
    }
}

#[test]
fn mutant_block_disable_ignored() {
    must_fail("block_disable ignored", &IgnoreBlock);
}

/// A replace may drop any state (no compatibility check).
struct NoCompatCheck;
impl Plan for NoCompatCheck {
    fn compatible(&self, _v: &View<'_>, _p: u8) -> bool {
        true
    }
}

#[test]
fn mutant_no_compatibility_check() {
    must_fail("no compatibility check", &NoCompatCheck);
}

/// Tasks start a transition in its target state.
struct TasksStartInTarget;
impl Plan for TasksStartInTarget {
    fn task_initial(&self, t: Target) -> Target {
        t
    }
}

#[test]
fn mutant_tasks_start_in_target() {
    must_fail("tasks start in the target state", &TasksStartInTarget);
}

/// A switching task checks the wrong version on its stack.
struct WrongVersionLeft;
impl Plan for WrongVersionLeft {
    fn leaves_new(&self, t: Target) -> bool {
        !plan::leaves_new(t)
    }
}

#[test]
fn mutant_switch_checks_wrong_version() {
    must_fail("a switch checks the wrong version", &WrongVersionLeft);
}

/// The transition completes when one task switched.
struct CompleteEarly;
impl Plan for CompleteEarly {
    fn all_switched(&self, tasks: &[Option<Target>], t: Target) -> bool {
        tasks.iter().any(|&s| s == Some(t))
    }
}

#[test]
fn mutant_transition_completes_early() {
    must_fail("transition completes early", &CompleteEarly);
}

/// An atomic replace without nops.
struct NoNops;
impl Plan for NoNops {
    fn nops(&self, _registered: &[u8], _new: &[u8]) -> Vec<u8> {
        Vec::new()
    }
}

#[test]
fn mutant_replace_without_nops() {
    must_fail("replace without nops", &NoNops);
}

/// A task in transition runs the top of the stack whatever its state.
struct AlwaysTop;
impl Plan for AlwaysTop {
    fn version(&self, stack: &[Entry], _in_trans: bool, _task: Option<Target>) -> Option<Entry> {
        stack.last().copied()
    }
}

#[test]
fn mutant_tasks_always_run_the_newest_version() {
    must_fail("tasks always run the newest version", &AlwaysTop);
}

/// The plan's order of events on a small case, spelled out.
#[test]
fn order_of_events() {
    let u = universe(vec![
        patch(false, &[0], &[st(1), shadow(2)]),
        patch(false, &[0], &[st(1), st(3)]),
        patch(true, &[1], &[st(3)]),
    ]);
    let s = |patch, state, callback| Step {
        patch,
        state,
        callback,
    };
    use Callback::*;
    let reg = [0u8, 1, 2];
    let v = View::new(&u, &reg);
    // P2 replaces P0 and P1: it takes 3 over (P1 carries it), state 1 is
    // removed by P1 (the newest carrier), state 2 by P0.
    let mut steps = Vec::new();
    let (pr, r) = Progress::enable(&v, 2, |x| {
        steps.push(x);
        Ok::<(), ()>(())
    });
    assert!(r.is_ok());
    assert_eq!(steps, [s(0, 2, PreUnpatch), s(1, 1, PreUnpatch)]);
    steps.clear();
    pr.complete(&v, 2, Target::Patched, |x| steps.push(x));
    assert_eq!(
        steps,
        [
            s(0, 2, PostUnpatch),
            s(0, 2, FreeShadow),
            s(1, 1, PostUnpatch)
        ]
    );
    assert_eq!(plan::removal_runner_on_replace(&v, 2, 1), Some(1));
    assert_eq!(plan::removal_runner_on_replace(&v, 2, 3), None);
    // Without atomic replace nothing is removed by enabling.
    let stacked = universe(vec![u.patches[0].clone(), u.patches[1].clone(), {
        let mut p = u.patches[2].clone();
        p.replace = false;
        p
    }]);
    let sv = View::new(&stacked, &reg);
    assert_eq!(plan::removal_runner_on_replace(&sv, 2, 1), None);
    let mut none = Vec::new();
    plan::for_each_removed_by_replace(&sv, 2, |q, s| none.push((q, s.id)));
    assert_eq!(none, []);
    // Reversed: the replaced patches get post_patch back.
    steps.clear();
    pr.complete(&v, 2, Target::Unpatched, |x| steps.push(x));
    assert_eq!(steps, [s(0, 2, PostPatch), s(1, 1, PostPatch)]);
    // P0 alone, its second pre_patch fails: the first is undone.
    let reg = [0u8];
    let v = View::new(&u, &reg);
    steps.clear();
    let (pr, r) = Progress::enable(&v, 0, |x| {
        steps.push(x);
        if x.state == 2 {
            Err(())
        } else {
            Ok(())
        }
    });
    assert!(r.is_err());
    pr.complete(&v, 0, Target::Unpatched, |x| steps.push(x));
    assert_eq!(
        steps,
        [s(0, 1, PrePatch), s(0, 2, PrePatch), s(0, 1, PostUnpatch)]
    );
    // A disable, and its reversal.
    steps.clear();
    let pr = Progress::disable(&v, 0, |x| steps.push(x));
    pr.complete(&v, 0, Target::Unpatched, |x| steps.push(x));
    pr.complete(&v, 0, Target::Patched, |x| steps.push(x));
    assert_eq!(
        steps,
        [
            s(0, 1, PreUnpatch),
            s(0, 2, PreUnpatch),
            s(0, 2, PostUnpatch),
            s(0, 2, FreeShadow),
            s(0, 1, PostUnpatch),
            s(0, 1, PostPatch),
            s(0, 2, PostPatch)
        ]
    );
    // Nops: once per function that the replaced patches patch and the
    // new one does not.
    let mut nops = Vec::new();
    plan::for_each_nop([0u8, 1, 0, 2].into_iter(), [1u8].into_iter(), |f| {
        nops.push(f)
    });
    assert_eq!(nops, [0, 2]);
}

/// `for_each_nop` against its definition, for every registered list of up
/// to four functions out of four and every replacing list of up to three
/// distinct ones in every order: the functions registered and not
/// replaced, each once, in the order of their first registration.
#[test]
fn nops_match_their_definition() {
    fn lists(max_len: usize, distinct: bool) -> Vec<Vec<u8>> {
        let mut all = vec![Vec::new()];
        let mut level = vec![Vec::new()];
        for _ in 0..max_len {
            let mut next = Vec::new();
            for l in &level {
                for x in 0u8..4 {
                    if distinct && l.contains(&x) {
                        continue;
                    }
                    let mut m: Vec<u8> = l.clone();
                    m.push(x);
                    next.push(m);
                }
            }
            all.extend(next.iter().cloned());
            level = next;
        }
        all
    }
    let mut cases = 0;
    for reg in lists(4, false) {
        for new in lists(3, true) {
            let mut want = Vec::new();
            for &x in &reg {
                if !new.contains(&x) && !want.contains(&x) {
                    want.push(x);
                }
            }
            let mut got = Vec::new();
            plan::for_each_nop(reg.iter().copied(), new.iter().copied(), |f| got.push(f));
            assert_eq!(got, want, "registered {reg:?}, new {new:?}");
            cases += 1;
        }
    }
    assert!(cases > 10_000);
}
