// SPDX-License-Identifier: GPL-2.0

//! The plan of the livepatch state model, and the bookkeeping of the
//! per-task transition.
//!
//! Pure code: it knows nothing of the kernel (`core` only, no allocation),
//! so the Rust livepatch core and the host-side model (`tools/klp-model`)
//! compile this very file.  The core describes its registered patches
//! through a [`PatchView`]; the functions here say which callback of which
//! patch runs for which state, in which order, and the core runs them.  See
//! `Documentation/livepatch/system-state.rst` for the rules:
//!
//! - a state is *introduced* by a patch being enabled when no other
//!   registered patch carries it.  The patches that an atomic replace takes
//!   over count as carriers: a replace takes their states over without
//!   running anything;
//! - a state is *removed* when, after a patch goes away (disabled or
//!   replaced), no registered patch carries it.  Exactly one patch runs the
//!   unpatch side: the one disabled, or, for an atomic replace, the most
//!   recently enabled replaced patch carrying the state;
//! - the callbacks of a state run in the order of events of the document,
//!   reversed transitions and a failing `pre_patch` included.
//!
//! Every query takes the view as it is for the whole transition: the patch
//! in transition is registered (the last one when it is being enabled) and
//! the replaced patches stay registered until their callbacks have run.

use crate::state_rules::{StateDesc, StateId};

/// What the plan needs to know of the registered patches.
pub trait PatchView {
    /// A handle of a patch.
    type P: Copy + Eq;
    /// The registered patches, in the order they were enabled.
    fn patches(&self) -> impl Iterator<Item = Self::P>;
    /// The states of a patch, in array order.
    fn states(&self, p: Self::P) -> impl Iterator<Item = StateDesc> + Clone;
    /// Whether the patch atomically replaces the patches registered before
    /// it.
    fn replace(&self, p: Self::P) -> bool;
}

/// One of the callbacks of a state, or the freeing of its shadow variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Callback {
    /// `pre_patch`: the only step that can fail.
    PrePatch,
    /// `post_patch`.
    PostPatch,
    /// `pre_unpatch`.
    PreUnpatch,
    /// `post_unpatch`.
    PostUnpatch,
    /// Free the shadow variables with the state's id, through the state's
    /// `shadow_dtor` (only for `is_shadow` states, right after
    /// `post_unpatch`).
    FreeShadow,
}

/// One step of the plan: run `callback` of the state `state` of `patch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Step<P> {
    /// The patch whose state's callback runs.
    pub patch: P,
    /// The state's id.
    pub state: StateId,
    /// What runs.
    pub callback: Callback,
}

/// The state `id` of `p`, if `p` carries it.
pub fn state_of<V: PatchView>(view: &V, p: V::P, id: StateId) -> Option<StateDesc> {
    view.states(p).find(|s| s.id == id)
}

/// Whether `p` carries the state `id`.
pub fn carries<V: PatchView>(view: &V, p: V::P, id: StateId) -> bool {
    state_of(view, p, id).is_some()
}

/// Whether a registered patch other than `p` carries the state `id`.
pub fn carried_by_other<V: PatchView>(view: &V, p: V::P, id: StateId) -> bool {
    view.patches().any(|q| q != p && carries(view, q, id))
}

/// Whether enabling `p` introduces its state `id`: no other registered patch
/// carries it (the patches that `p` replaces count).  Only then does `p` run
/// the state's `pre_patch` and `post_patch`.
pub fn introduced<V: PatchView>(view: &V, p: V::P, id: StateId) -> bool {
    carries(view, p, id) && !carried_by_other(view, p, id)
}

/// Whether disabling `p` removes its state `id`: no other registered patch
/// carries it.  Then `p` runs the state's `pre_unpatch` and `post_unpatch`.
pub fn removed_by_disable<V: PatchView>(view: &V, p: V::P, id: StateId) -> bool {
    introduced(view, p, id)
}

/// The patch that undoes the state `id` when `new` atomically replaces the
/// other registered patches: the most recently enabled of them that carries
/// it, or `None` when the state is not removed (`new` carries it, nobody
/// does, or `new` does not replace).
pub fn removal_runner_on_replace<V: PatchView>(view: &V, new: V::P, id: StateId) -> Option<V::P> {
    if !view.replace(new) || carries(view, new, id) {
        return None;
    }
    view.patches()
        .filter(|&q| q != new && carries(view, q, id))
        .last()
}

/// Calls `f` with every state that the atomic replace by `new` removes,
/// each once, with the replaced patch that undoes it: in the order of the
/// patches, then of their states.  Nothing when `new` does not replace.
pub fn for_each_removed_by_replace<V: PatchView>(
    view: &V,
    new: V::P,
    mut f: impl FnMut(V::P, StateDesc),
) {
    if !view.replace(new) {
        return;
    }
    for q in view.patches().filter(|&q| q != new) {
        for s in view.states(q) {
            if removal_runner_on_replace(view, new, s.id) == Some(q) {
                f(q, s);
            }
        }
    }
}

/// The first state of `p` that forbids disabling it, if any: writing 0 to
/// `enabled` must then fail.
pub fn disable_blocked<V: PatchView>(view: &V, p: V::P) -> Option<StateId> {
    view.states(p).find(|s| s.block_disable).map(|s| s.id)
}

/// Direction of a transition, and the patch state of a task in one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// The patch is not in effect (`KLP_TRANSITION_UNPATCHED`).
    Unpatched,
    /// The patch is in effect (`KLP_TRANSITION_PATCHED`).
    Patched,
}

impl Target {
    /// The other direction: the target after a reversal, and the state the
    /// tasks start a transition in.
    pub fn opposite(self) -> Self {
        match self {
            Target::Unpatched => Target::Patched,
            Target::Patched => Target::Unpatched,
        }
    }
}

/// What the state plan of the transition in progress has run so far.  The
/// core keeps one for the patch in transition, from [`Progress::enable`] or
/// [`Progress::disable`] to [`Progress::complete`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Progress {
    /// The transition began as an enable (else as a disable).
    enabling: bool,
    /// How many leading states of the patch passed the `pre_patch` step
    /// (taken over or `pre_patch` succeeded).
    pre_patched: usize,
    /// The replaced patches ran `pre_unpatch` for the states the replace
    /// removes.
    replaced_pre_unpatched: bool,
}

impl Progress {
    /// No transition: the value to keep while none runs.
    pub const IDLE: Progress = Progress {
        enabling: false,
        pre_patched: 0,
        replaced_pre_unpatched: false,
    };

    /// Steps 2 and 3 of enabling `p` (registered, last in the view): the
    /// `pre_patch` of every state `p` introduces, in array order; then, if
    /// `p` replaces, the `pre_unpatch` of the replaced patches for the states
    /// it removes.
    ///
    /// `run` runs one step; only the result of a `PrePatch` step counts.  On
    /// the first error nothing more runs and the error is returned: the
    /// caller then cancels the transition, and [`Progress::complete`] with
    /// [`Target::Unpatched`] undoes the states whose `pre_patch` succeeded.
    pub fn enable<V: PatchView, E>(
        view: &V,
        p: V::P,
        mut run: impl FnMut(Step<V::P>) -> Result<(), E>,
    ) -> (Self, Result<(), E>) {
        let mut me = Progress {
            enabling: true,
            ..Progress::IDLE
        };
        for s in view.states(p) {
            if introduced(view, p, s.id) {
                if let Err(e) = run(step(p, s.id, Callback::PrePatch)) {
                    return (me, Err(e));
                }
            }
            me.pre_patched += 1;
        }
        if view.replace(p) {
            for_each_removed_by_replace(view, p, |q, s| {
                let _ = run(step(q, s.id, Callback::PreUnpatch));
            });
            me.replaced_pre_unpatched = true;
        }
        (me, Ok(()))
    }

    /// Disabling `p` begins: `pre_unpatch` of every state it removes, in
    /// array order.  The caller checks [`disable_blocked`] before.
    pub fn disable<V: PatchView>(view: &V, p: V::P, mut run: impl FnMut(Step<V::P>)) -> Self {
        let mut n = 0;
        for s in view.states(p) {
            if removed_by_disable(view, p, s.id) {
                run(step(p, s.id, Callback::PreUnpatch));
            }
            n += 1;
        }
        Progress {
            pre_patched: n,
            ..Progress::IDLE
        }
    }

    /// Whether the transition began as an enable.
    pub fn enabling(&self) -> bool {
        self.enabling
    }

    /// The transition of `p` reached `target` (every task switched; for a
    /// cancelled enable, right away): runs what finishes it, the replaced
    /// patches' part ([`Progress::complete_replaced`]) then that of `p`
    /// ([`Progress::complete_own`]).
    pub fn complete<V: PatchView>(
        self,
        view: &V,
        p: V::P,
        target: Target,
        mut run: impl FnMut(Step<V::P>),
    ) {
        self.complete_replaced(view, p, target, &mut run);
        self.complete_own(view, p, target, run);
    }

    /// The replaced patches' part of the end of a transition of `p` to
    /// `target`; nothing unless `p` began an atomic replace:
    ///
    /// - the replace completes: `post_unpatch` and shadow freeing of the
    ///   states it removes, by the replaced patch that undoes each.  Call it
    ///   once the replaced patches are unpatched, before unregistering them;
    /// - the replace was reversed or cancelled after step 3: their
    ///   `post_patch` for those states, undoing their `pre_unpatch` (they
    ///   stay).
    pub fn complete_replaced<V: PatchView>(
        &self,
        view: &V,
        p: V::P,
        target: Target,
        mut run: impl FnMut(Step<V::P>),
    ) {
        if !(self.enabling && self.replaced_pre_unpatched) {
            return;
        }
        for_each_removed_by_replace(view, p, |q, s| match target {
            Target::Patched => {
                run(step(q, s.id, Callback::PostUnpatch));
                if s.is_shadow {
                    run(step(q, s.id, Callback::FreeShadow));
                }
            }
            Target::Unpatched => run(step(q, s.id, Callback::PostPatch)),
        });
    }

    /// The part of `p` itself of the end of its transition to `target`:
    ///
    /// - an enable that completes: `post_patch` of the states it introduced,
    ///   in array order;
    /// - an enable that was reversed or cancelled: `post_unpatch` and shadow
    ///   freeing of the states whose `pre_patch` succeeded, in reverse array
    ///   order;
    /// - a disable that completes: `post_unpatch` and shadow freeing of the
    ///   states `p` removes, in reverse array order;
    /// - a disable that was reversed: `post_patch` of those states, in array
    ///   order, undoing their `pre_unpatch`.
    pub fn complete_own<V: PatchView>(
        self,
        view: &V,
        p: V::P,
        target: Target,
        mut run: impl FnMut(Step<V::P>),
    ) {
        match target {
            Target::Patched => {
                for s in view.states(p) {
                    if introduced(view, p, s.id) {
                        run(step(p, s.id, Callback::PostPatch));
                    }
                }
            }
            Target::Unpatched => {
                for i in (0..self.pre_patched).rev() {
                    let Some(s) = view.states(p).nth(i) else {
                        continue;
                    };
                    if introduced(view, p, s.id) {
                        run(step(p, s.id, Callback::PostUnpatch));
                        if s.is_shadow {
                            run(step(p, s.id, Callback::FreeShadow));
                        }
                    }
                }
            }
        }
    }
}

fn step<P>(patch: P, state: StateId, callback: Callback) -> Step<P> {
    Step {
        patch,
        state,
        callback,
    }
}

/// The patch state every task starts a transition to `target` in.
pub fn task_initial(target: Target) -> Target {
    target.opposite()
}

/// Whether a task in patch state `task` (`None`: idle, no transition) runs
/// the newest version of a function, the top of its func stack, rather than
/// the previous one.  `in_transition` tells whether that newest version
/// belongs to the patch in transition.
pub fn runs_top(in_transition: bool, task: Option<Target>) -> bool {
    !in_transition || task != Some(Target::Unpatched)
}

/// The version of a function a task runs: `stack` is the func stack, newest
/// first; `None` stands for the original function.
pub fn version<F>(
    mut stack: impl Iterator<Item = F>,
    top_in_transition: bool,
    task: Option<Target>,
) -> Option<F> {
    if !runs_top(top_in_transition, task) {
        stack.next();
    }
    stack.next()
}

/// Whether a task switching to `target` leaves the version of the patch in
/// transition (else it leaves the previous version).  A task may switch
/// only when the version it leaves of no function of that patch is on its
/// stack.
pub fn leaves_new(target: Target) -> bool {
    target == Target::Unpatched
}

/// Whether a transition to `target` is complete: every task switched.
pub fn all_switched(mut tasks: impl Iterator<Item = Option<Target>>, target: Target) -> bool {
    tasks.all(|t| t == Some(target))
}

/// The nops an atomic replace needs: calls `f` once with every function that
/// a registered patch patches (`registered`, possibly with repetitions) and
/// the replacing patch does not (`new`).  The nop reverts it to the
/// original code once the replaced patches are gone.
pub fn for_each_nop<F: PartialEq, R, N>(registered: R, new: N, mut f: impl FnMut(F))
where
    R: Iterator<Item = F> + Clone,
    N: Iterator<Item = F> + Clone,
{
    // Each search of `new` starts after the previous match and wraps
    // around: linear, not quadratic, when both list the functions in the
    // same order (a cumulative patch replacing its predecessor).
    let len = new.clone().count();
    let mut from = 0;
    for (i, func) in registered.clone().enumerate() {
        let hit = new
            .clone()
            .skip(from)
            .chain(new.clone().take(from))
            .position(|n| n == func);
        if let Some(p) = hit {
            // `from` and `p` are below `len`: one subtraction wraps (and
            // no division, whose zero check objtool would not follow).
            let next = from + p + 1;
            from = if next >= len { next - len } else { next };
            continue;
        }
        if registered.clone().take(i).any(|r| r == func) {
            continue;
        }
        f(func);
    }
}
