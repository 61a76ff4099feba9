// SPDX-License-Identifier: GPL-2.0

//! A model of the livepatch world that drives the kernel's pure code.
//!
//! The world holds livepatches (functions and states), tasks that sit in
//! functions, and one module whose functions come and go.  The operations
//! are those of the kernel's entry points: load (enable) a patch, possibly
//! with a failing `pre_patch` or a later failure, disable it, reverse or
//! force the transition, let one task switch, retry the whole transition
//! (the work item), let a task enter or leave a function, load or unload
//! the module.
//!
//! Every decision that the kernel takes through the shared files
//! (`state_rules.rs`, `state_plan.rs`) is taken here through the same code,
//! by way of a [`Plan`] that tests can break on purpose.  Everything else is
//! modelled after the kernel's glue.  After every operation the invariants of
//! `Documentation/livepatch/system-state.rst` and of the consistency model
//! are checked against the world, with code independent of the plan:
//!
//! - per state id, the callbacks follow the automaton absent -> pre_patch ->
//!   post_patch -> live -> pre_unpatch -> post_unpatch -> absent (with the
//!   reversals post_unpatch after pre_patch and post_patch after
//!   pre_unpatch), both halves of a side by one patch: every `*_unpatch` has
//!   an earlier matching `*_patch` that succeeded and no side runs twice in
//!   a row;
//! - when no transition runs, a state is live exactly when a registered
//!   patch carries it, and absent otherwise: pre_patch/post_patch ran once
//!   when it was introduced and the unpatch side once when it was removed;
//!   the unpatch side runs by the most recently enabled registered carrier;
//! - shadow variables of an `is_shadow` state exist exactly while a
//!   registered patch carries it and are freed right after `post_unpatch`;
//! - every task runs, over all functions and the one it sits in, either the
//!   world without the patch in transition or the world with it, never a
//!   mix (unless forced), and a completed transition leaves every task in the
//!   target state;
//! - the func stacks hold the registered patches' functions in enable
//!   order;
//! - a patch with a `block_disable` state is never disabled, and the state
//!   never goes away with a replaced patch; a replace never drops a legacy
//!   state, and no version goes down.

use crate::state_plan::{self as plan, Callback, PatchView, Progress, Step, Target};
use crate::state_rules::{self as rules, StateDesc, StateId};
use std::collections::HashSet;
use std::fmt::Write as _;

/// A patch of the universe.
#[derive(Clone, Debug)]
pub struct PatchDef {
    /// Atomic replace.
    pub replace: bool,
    /// The functions it patches (indexes into [`Universe::funcs`]).
    pub funcs: Vec<u8>,
    /// Its states, in array order.
    pub states: Vec<StateDesc>,
}

/// The things that can exist: patches, functions, tasks, state ids.
#[derive(Clone, Debug)]
pub struct Universe {
    /// The patches, by index.
    pub patches: Vec<PatchDef>,
    /// The functions: `true` when it belongs to the module, else vmlinux.
    pub funcs: Vec<bool>,
    /// Number of tasks.
    pub tasks: usize,
    /// State ids are `1..=nstates`.
    pub nstates: usize,
}

/// A state of the new model (has callbacks).
pub fn st(id: StateId) -> StateDesc {
    StateDesc {
        id,
        version: 0,
        has_callbacks: true,
        is_shadow: false,
        block_disable: false,
    }
}

/// A state that owns shadow variables.
pub fn shadow(id: StateId) -> StateDesc {
    StateDesc {
        is_shadow: true,
        ..st(id)
    }
}

/// A state that blocks disabling.
pub fn blocking(id: StateId) -> StateDesc {
    StateDesc {
        block_disable: true,
        ..st(id)
    }
}

/// A legacy state (no callbacks) with a version.
pub fn legacy(id: StateId, version: u32) -> StateDesc {
    StateDesc {
        version,
        has_callbacks: false,
        ..st(id)
    }
}

/// A registered patch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reg {
    /// Which patch of the universe.
    pub p: u8,
    /// The sysfs `enabled` value.
    pub enabled: bool,
    /// Its enable transition completed.
    pub completed: bool,
    /// The functions of its nops (bit mask), for a replace.
    pub nops: u32,
}

/// The transition in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Trans {
    /// The patch in transition.
    pub p: u8,
    /// Where the tasks go.
    pub target: Target,
    /// The state plan's bookkeeping.
    pub progress: Progress,
}

/// Code of a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// The original function (or a nop).
    Orig,
    /// The version of a patch.
    Patch(u8),
}

/// A task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Task {
    /// `task->patch_state`; `None` is `KLP_TRANSITION_IDLE`.
    pub state: Option<Target>,
    /// `TIF_PATCH_PENDING`.
    pub pending: bool,
    /// The function the task sits in, with the code it runs there.
    pub frame: Option<(u8, Version)>,
    /// It was forced while sitting in code that its new state does not run.
    pub stale: bool,
}

/// Where a state id is in its life, with the patch that runs its current
/// side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Life {
    /// Nothing done (or all undone).
    Absent,
    /// `pre_patch` succeeded (by that patch).
    PrePatched(u8),
    /// `post_patch` ran.
    Live,
    /// `pre_unpatch` ran (by that patch).
    PreUnpatched(u8),
}

/// A function on a func stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The patch.
    pub p: u8,
    /// A nop of an atomic replace.
    pub nop: bool,
}

impl Entry {
    fn version(self) -> Version {
        if self.nop {
            Version::Orig
        } else {
            Version::Patch(self.p)
        }
    }
}

fn ver(e: Option<Entry>) -> Version {
    e.map_or(Version::Orig, Entry::version)
}

/// The whole world.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct World {
    /// Registered patches, in enable order.
    pub reg: Vec<Reg>,
    /// The transition in progress.
    pub trans: Option<Trans>,
    /// The tasks.
    pub tasks: Vec<Task>,
    /// The module is loaded.
    pub module: bool,
    /// Func stacks, bottom (oldest) first.
    pub stacks: Vec<Vec<Entry>>,
    /// Per state id (index `id - 1`).
    pub life: Vec<Life>,
    /// Shadow variables exist, per state id.
    pub shadow: Vec<bool>,
}

/// How a load fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fail {
    /// It does not.
    No,
    /// The n-th `pre_patch` that runs fails.
    Pre(u8),
    /// Something after the state callbacks fails (an object's pre_patch
    /// callback, ftrace).
    Late,
}

/// An operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Load a livepatch module: `klp_enable_patch()`.
    Load(u8, Fail),
    /// Write 0 to `enabled` of a patch that is not in transition.
    Disable(u8),
    /// Write the opposite to `enabled` of the patch in transition.
    Reverse,
    /// Write 1 to `force`.
    Force,
    /// The transition work: try to switch every task, complete.
    Retry,
    /// One task tries to switch (`cond_resched()`, return to user space).
    Switch(u8),
    /// A task calls a function and sleeps in it.
    Enter(u8, u8),
    /// A task returns from its function.
    Leave(u8),
    /// The module comes.
    ModLoad,
    /// The module goes.
    ModUnload,
}

/// The registered patches as the shared code sees them.
pub struct View<'a> {
    u: &'a Universe,
    reg: &'a [u8],
}

impl<'a> View<'a> {
    /// A view of the registered patches `reg`, in enable order.
    pub fn new(u: &'a Universe, reg: &'a [u8]) -> Self {
        View { u, reg }
    }
    /// The same universe with other registered patches.
    pub fn with_reg<'b>(&self, reg: &'b [u8]) -> View<'b>
    where
        'a: 'b,
    {
        View { u: self.u, reg }
    }
    /// The registered patches before `p` in reverse order, then `p`.
    pub fn reversed_before(&self, p: u8) -> Vec<u8> {
        let mut v: Vec<u8> = self.reg.iter().copied().filter(|&q| q != p).rev().collect();
        v.push(p);
        v
    }
}

impl PatchView for View<'_> {
    type P = u8;
    fn patches(&self) -> impl Iterator<Item = u8> {
        self.reg.iter().copied()
    }
    fn states(&self, p: u8) -> impl Iterator<Item = StateDesc> + Clone {
        self.u.patches[p as usize].states.iter().copied()
    }
    fn replace(&self, p: u8) -> bool {
        self.u.patches[p as usize].replace
    }
}

/// A function that runs one step of the plan; `Err` fails a `pre_patch`.
pub type RunFallible<'a> = &'a mut dyn FnMut(Step<u8>) -> Result<(), ()>;
/// A function that runs one step of the plan.
pub type Run<'a> = &'a mut dyn FnMut(Step<u8>);

/// The shared decisions, as the model takes them.  The default methods are
/// the kernel's code; tests override one to break a rule on purpose.
pub trait Plan {
    /// Steps 2 and 3 of an enable.
    fn enable(&self, v: &View<'_>, p: u8, run: RunFallible<'_>) -> (Progress, Result<(), ()>) {
        Progress::enable(v, p, run)
    }
    /// The beginning of a disable.
    fn disable(&self, v: &View<'_>, p: u8, run: Run<'_>) -> Progress {
        Progress::disable(v, p, run)
    }
    /// The replaced patches' part of the end of a transition.
    fn complete_replaced(&self, pr: Progress, v: &View<'_>, p: u8, t: Target, run: Run<'_>) {
        pr.complete_replaced(v, p, t, run)
    }
    /// The own part of the end of a transition.
    fn complete_own(&self, pr: Progress, v: &View<'_>, p: u8, t: Target, run: Run<'_>) {
        pr.complete_own(v, p, t, run)
    }
    /// Whether disabling is refused.
    fn disable_blocked(&self, v: &View<'_>, p: u8) -> Option<StateId> {
        plan::disable_blocked(v, p)
    }
    /// The compatibility check of a new patch against the registered ones.
    fn compatible(&self, v: &View<'_>, p: u8) -> bool {
        let new = || v.states(p);
        rules::check_own(new()).is_ok()
            && v.patches()
                .all(|q| rules::check_against(new(), v.replace(p), v.states(q)).is_ok())
    }
    /// The state tasks start a transition in.
    fn task_initial(&self, t: Target) -> Target {
        plan::task_initial(t)
    }
    /// The version a task runs; `stack` is bottom first.
    fn version(&self, stack: &[Entry], in_trans: bool, task: Option<Target>) -> Option<Entry> {
        plan::version(stack.iter().rev().copied(), in_trans, task)
    }
    /// Whether switching to `t` leaves the transition patch's version.
    fn leaves_new(&self, t: Target) -> bool {
        plan::leaves_new(t)
    }
    /// Whether the transition is complete.
    fn all_switched(&self, tasks: &[Option<Target>], t: Target) -> bool {
        plan::all_switched(tasks.iter().copied(), t)
    }
    /// The nops of a replace.
    fn nops(&self, registered: &[u8], new: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        plan::for_each_nop(registered.iter().copied(), new.iter().copied(), |f| {
            v.push(f)
        });
        v
    }
}

/// The kernel's plan.
pub struct Real;
impl Plan for Real {}

/// A broken invariant, with the operations that led to it.
#[derive(Debug)]
pub struct Failure {
    /// What broke.
    pub msg: String,
    /// The operations from the empty world.
    pub trace: Vec<Op>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} after {:?}", self.msg, self.trace)
    }
}

type R<T> = Result<T, String>;

macro_rules! ensure {
    ($c:expr, $($a:tt)*) => {
        if !$c {
            return Err(format!($($a)*));
        }
    };
}

/// The model: a universe and a plan.
pub struct Model<'a, L: Plan + ?Sized> {
    /// The universe.
    pub u: &'a Universe,
    /// The plan.
    pub plan: &'a L,
}

impl<'a, L: Plan + ?Sized> Model<'a, L> {
    /// The empty world: nothing registered, the module loaded, tasks idle.
    pub fn initial(&self) -> World {
        World {
            reg: Vec::new(),
            trans: None,
            tasks: vec![
                Task {
                    state: None,
                    pending: false,
                    frame: None,
                    stale: false,
                };
                self.u.tasks
            ],
            module: true,
            stacks: vec![Vec::new(); self.u.funcs.len()],
            life: vec![Life::Absent; self.u.nstates],
            shadow: vec![false; self.u.nstates],
        }
    }

    fn def(&self, p: u8) -> &'a PatchDef {
        &self.u.patches[p as usize]
    }

    fn desc(&self, p: u8, id: StateId) -> Option<StateDesc> {
        self.def(p).states.iter().copied().find(|s| s.id == id)
    }

    fn loaded(&self, w: &World, f: u8) -> bool {
        !self.u.funcs[f as usize] || w.module
    }

    /// The functions of a registered patch, with whether each is a nop.
    fn funcs(&self, r: &Reg) -> Vec<(u8, bool)> {
        let mut v: Vec<_> = self.def(r.p).funcs.iter().map(|&f| (f, false)).collect();
        v.extend(
            (0..32u8)
                .filter(|f| r.nops & (1 << f) != 0)
                .map(|f| (f, true)),
        );
        v
    }

    /// The operations that make sense in `w`.
    pub fn ops(&self, w: &World) -> Vec<Op> {
        let mut v = Vec::new();
        if let Some(tr) = w.trans {
            v.extend([Op::Reverse, Op::Force, Op::Retry]);
            for (t, task) in w.tasks.iter().enumerate() {
                if task.state != Some(tr.target) {
                    v.push(Op::Switch(t as u8));
                }
            }
        } else {
            for p in 0..self.u.patches.len() as u8 {
                match w.reg.iter().find(|r| r.p == p) {
                    None => {
                        v.push(Op::Load(p, Fail::No));
                        v.push(Op::Load(p, Fail::Late));
                        for k in 0..self.def(p).states.len() as u8 {
                            v.push(Op::Load(p, Fail::Pre(k)));
                        }
                    }
                    Some(r) if r.enabled => v.push(Op::Disable(p)),
                    Some(_) => {}
                }
            }
        }
        for (t, task) in w.tasks.iter().enumerate() {
            match task.frame {
                Some(_) => v.push(Op::Leave(t as u8)),
                None => {
                    for f in 0..self.u.funcs.len() as u8 {
                        if self.loaded(w, f) {
                            v.push(Op::Enter(t as u8, f));
                        }
                    }
                }
            }
        }
        if w.module {
            let busy = w
                .tasks
                .iter()
                .any(|t| t.frame.is_some_and(|(f, _)| self.u.funcs[f as usize]));
            if !busy {
                v.push(Op::ModUnload);
            }
        } else {
            v.push(Op::ModLoad);
        }
        v
    }

    /// Applies `op` to `w`: the new world, `None` when the operation is
    /// refused or makes no sense (the world stays), or a broken invariant.
    pub fn apply(&self, w: &World, op: Op) -> R<Option<World>> {
        let mut w = w.clone();
        let changed = match op {
            Op::Load(p, fail) => self.load(&mut w, p, fail)?,
            Op::Disable(p) => self.disable(&mut w, p)?,
            Op::Reverse => self.reverse(&mut w),
            Op::Force => self.force(&mut w)?,
            Op::Retry => self.retry(&mut w)?,
            Op::Switch(t) => self.switch(&mut w, t as usize)?,
            Op::Enter(t, f) => {
                let task = w.tasks[t as usize];
                if task.frame.is_some() || !self.loaded(&w, f) {
                    false
                } else {
                    let v = self.task_version(&w, t as usize, f);
                    w.tasks[t as usize].frame = Some((f, v));
                    true
                }
            }
            Op::Leave(t) => {
                let task = &mut w.tasks[t as usize];
                let had = task.frame.take().is_some();
                task.stale = false;
                had
            }
            Op::ModLoad => {
                if w.module {
                    false
                } else {
                    w.module = true;
                    // The module's functions get patched by every registered
                    // patch, in order (klp_module_coming).
                    for i in 0..w.reg.len() {
                        let r = w.reg[i].clone();
                        for (f, nop) in self.funcs(&r) {
                            if self.u.funcs[f as usize] {
                                w.stacks[f as usize].push(Entry { p: r.p, nop });
                            }
                        }
                    }
                    true
                }
            }
            Op::ModUnload => {
                let busy = w
                    .tasks
                    .iter()
                    .any(|t| t.frame.is_some_and(|(f, _)| self.u.funcs[f as usize]));
                if !w.module || busy {
                    false
                } else {
                    w.module = false;
                    for (f, &m) in self.u.funcs.iter().enumerate() {
                        if m {
                            w.stacks[f].clear();
                        }
                    }
                    true
                }
            }
        };
        if !changed {
            return Ok(None);
        }
        self.check(&w)?;
        Ok(Some(w))
    }

    fn reg_ids(w: &World) -> Vec<u8> {
        w.reg.iter().map(|r| r.p).collect()
    }

    /// Runs the steps the plan produced, checking each.
    fn run_steps(&self, w: &mut World, reg: &[u8], steps: &[(Step<u8>, bool)]) -> R<()> {
        let carriers = |id: StateId| -> Vec<u8> {
            reg.iter()
                .copied()
                .filter(|&q| self.desc(q, id).is_some())
                .collect()
        };
        let mut prev: Option<Step<u8>> = None;
        for &(s, ok) in steps {
            let Some(d) = self.desc(s.patch, s.state) else {
                return Err(format!("{s:?}: the patch does not carry the state"));
            };
            ensure!(reg.contains(&s.patch), "{s:?}: patch not registered");
            let i = (s.state - 1) as usize;
            let life = w.life[i];
            if let Some(pr) = prev {
                if pr.callback == Callback::PostUnpatch
                    && self.desc(pr.patch, pr.state).is_some_and(|d| d.is_shadow)
                {
                    ensure!(
                        s == Step {
                            callback: Callback::FreeShadow,
                            ..pr
                        },
                        "{s:?}: shadow variables of state {} not freed right after its post_unpatch",
                        pr.state
                    );
                }
            }
            let last_carrier = carriers(s.state).last().copied();
            match (s.callback, life) {
                (Callback::PrePatch, Life::Absent) => {
                    if ok {
                        w.life[i] = Life::PrePatched(s.patch);
                        if d.is_shadow {
                            // The callback allocates the state's variables.
                            w.shadow[i] = true;
                        }
                    }
                }
                (Callback::PostPatch, Life::PrePatched(q) | Life::PreUnpatched(q))
                    if q == s.patch =>
                {
                    w.life[i] = Life::Live;
                }
                (Callback::PreUnpatch, Life::Live) => {
                    ensure!(
                        last_carrier == Some(s.patch),
                        "{s:?}: the unpatch side must run by the last registered carrier {last_carrier:?}"
                    );
                    w.life[i] = Life::PreUnpatched(s.patch);
                }
                (Callback::PostUnpatch, Life::PrePatched(q) | Life::PreUnpatched(q))
                    if q == s.patch =>
                {
                    w.life[i] = Life::Absent;
                }
                (Callback::FreeShadow, Life::Absent) => {
                    ensure!(d.is_shadow, "{s:?}: not an is_shadow state");
                    ensure!(
                        prev == Some(Step {
                            callback: Callback::PostUnpatch,
                            ..s
                        }),
                        "{s:?}: shadow variables freed but not right after post_unpatch"
                    );
                    w.shadow[i] = false;
                }
                _ => return Err(format!("{s:?} runs while the state is {life:?}")),
            }
            prev = Some(s);
        }
        if let Some(pr) = prev {
            ensure!(
                !(pr.callback == Callback::PostUnpatch
                    && self.desc(pr.patch, pr.state).is_some_and(|d| d.is_shadow)),
                "{pr:?}: shadow variables not freed after post_unpatch"
            );
        }
        Ok(())
    }

    fn load(&self, w: &mut World, p: u8, fail: Fail) -> R<bool> {
        if w.trans.is_some() || w.reg.iter().any(|r| r.p == p) {
            return Ok(false);
        }
        let reg = Self::reg_ids(w);
        let def = self.def(p);
        if !self.plan.compatible(
            &View {
                u: self.u,
                reg: &reg,
            },
            p,
        ) {
            return Ok(false);
        }
        // Independent checks of what an accepted patch may do.
        for s in &def.states {
            for &q in &reg {
                if let Some(o) = self.desc(q, s.id) {
                    ensure!(
                        s.version >= o.version,
                        "load of {p}: state {} goes down from version {} to {}",
                        s.id,
                        o.version,
                        s.version
                    );
                }
            }
        }
        let mut nops = 0u32;
        if def.replace {
            let old: Vec<u8> = w
                .reg
                .iter()
                .flat_map(|r| self.funcs(r).into_iter().map(|(f, _)| f))
                .collect();
            for f in self.plan.nops(&old, &def.funcs) {
                nops |= 1 << f;
            }
        }
        w.reg.push(Reg {
            p,
            enabled: false,
            completed: false,
            nops,
        });
        let reg = Self::reg_ids(w);
        let view = View {
            u: self.u,
            reg: &reg,
        };
        // transition::prepare
        let initial = self.plan.task_initial(Target::Patched);
        for t in &mut w.tasks {
            t.state = Some(initial);
            t.pending = false;
        }
        let mut steps = Vec::new();
        let mut npre = 0u8;
        let (progress, res) = self.plan.enable(&view, p, &mut |s: Step<u8>| {
            let ok = match (s.callback, fail) {
                (Callback::PrePatch, Fail::Pre(k)) => {
                    npre += 1;
                    npre != k + 1
                }
                (Callback::PrePatch, _) => {
                    npre += 1;
                    true
                }
                _ => true,
            };
            steps.push((s, ok));
            if ok {
                Ok(())
            } else {
                Err(())
            }
        });
        if let Fail::Pre(k) = fail {
            if npre <= k {
                // Fewer pre_patch callbacks than that: not this operation.
                return Ok(false);
            }
            ensure!(
                res.is_err(),
                "load of {p}: pre_patch failed but the enable went on"
            );
        } else {
            ensure!(
                res.is_ok(),
                "load of {p}: failed without a failing callback"
            );
        }
        self.run_steps(w, &reg, &steps)?;
        w.trans = Some(Trans {
            p,
            target: Target::Patched,
            progress,
        });
        if res.is_err() || fail == Fail::Late {
            // transition::cancel: complete right away, unpatched.
            w.trans.as_mut().unwrap().target = Target::Unpatched;
            self.complete(w)?;
            return Ok(true);
        }
        // Patch the loaded objects, start the transition, try to complete.
        let r = w.reg.last().unwrap().clone();
        for (f, nop) in self.funcs(&r) {
            if self.loaded(w, f) {
                w.stacks[f as usize].push(Entry { p, nop });
            }
        }
        self.start(w);
        w.reg.last_mut().unwrap().enabled = true;
        self.retry(w)?;
        Ok(true)
    }

    fn start(&self, w: &mut World) {
        let tr = w.trans.unwrap();
        for t in &mut w.tasks {
            t.pending = t.state != Some(tr.target);
        }
    }

    fn disable(&self, w: &mut World, p: u8) -> R<bool> {
        if w.trans.is_some() || !w.reg.iter().any(|r| r.p == p && r.enabled) {
            return Ok(false);
        }
        let reg = Self::reg_ids(w);
        let view = View {
            u: self.u,
            reg: &reg,
        };
        let blocks = self.def(p).states.iter().any(|s| s.block_disable);
        if self.plan.disable_blocked(&view, p).is_some() {
            ensure!(blocks, "disable of {p} refused without a blocking state");
            return Ok(false);
        }
        ensure!(!blocks, "disable of {p} allowed with a block_disable state");
        let initial = self.plan.task_initial(Target::Unpatched);
        for t in &mut w.tasks {
            t.state = Some(initial);
            t.pending = false;
        }
        let mut steps = Vec::new();
        let progress = self
            .plan
            .disable(&view, p, &mut |s: Step<u8>| steps.push((s, true)));
        self.run_steps(w, &reg, &steps)?;
        w.trans = Some(Trans {
            p,
            target: Target::Unpatched,
            progress,
        });
        self.start(w);
        w.reg.iter_mut().find(|r| r.p == p).unwrap().enabled = false;
        self.retry(w)?;
        Ok(true)
    }

    fn reverse(&self, w: &mut World) -> bool {
        let Some(tr) = w.trans.as_mut() else {
            return false;
        };
        tr.target = tr.target.opposite();
        let p = tr.p;
        for t in &mut w.tasks {
            t.pending = false;
        }
        let r = w.reg.iter_mut().find(|r| r.p == p).unwrap();
        r.enabled = !r.enabled;
        self.start(w);
        true
    }

    fn force(&self, w: &mut World) -> R<bool> {
        let Some(tr) = w.trans else {
            return Ok(false);
        };
        for t in 0..w.tasks.len() {
            if w.tasks[t].pending {
                w.tasks[t].pending = false;
                w.tasks[t].state = Some(tr.target);
                // A task forced while sitting in code that its new state
                // does not run is allowed to be inconsistent until it
                // returns.
                if self.consistent(w, t).is_err() {
                    w.tasks[t].stale = true;
                }
            }
        }
        Ok(true)
    }

    /// Tries to switch task `t`: whether the world changed.
    fn switch(&self, w: &mut World, t: usize) -> R<bool> {
        let Some(tr) = w.trans else {
            return Ok(false);
        };
        let task = w.tasks[t];
        if task.state == Some(tr.target) {
            return Ok(false);
        }
        if let Some((f, v)) = task.frame {
            let stack = &w.stacks[f as usize];
            if let Some(i) = stack.iter().position(|e| e.p == tr.p) {
                let left = if self.plan.leaves_new(tr.target) {
                    stack[i].version()
                } else {
                    ver(i.checked_sub(1).map(|j| stack[j]))
                };
                if v == left {
                    return Ok(false);
                }
            }
        }
        let task = &mut w.tasks[t];
        task.state = Some(tr.target);
        task.pending = false;
        Ok(true)
    }

    fn retry(&self, w: &mut World) -> R<bool> {
        let Some(tr) = w.trans else {
            return Ok(false);
        };
        let mut changed = false;
        for t in 0..w.tasks.len() {
            changed |= self.switch(w, t)?;
        }
        let states: Vec<_> = w.tasks.iter().map(|t| t.state).collect();
        if self.plan.all_switched(&states, tr.target) {
            self.complete(w)?;
            changed = true;
        }
        Ok(changed)
    }

    /// transition.rs: complete_transition, then the frees.
    fn complete(&self, w: &mut World) -> R<()> {
        let tr = w.trans.unwrap();
        for (t, task) in w.tasks.iter().enumerate() {
            ensure!(
                task.state == Some(tr.target),
                "transition of {} to {:?} completes with task {t} in {:?}",
                tr.p,
                tr.target,
                task.state
            );
        }
        let reg = Self::reg_ids(w);
        let view = View {
            u: self.u,
            reg: &reg,
        };
        let replace = self.def(tr.p).replace;
        let mut steps = Vec::new();
        let pos = w.reg.iter().position(|r| r.p == tr.p).unwrap();
        // The patches an atomic replace takes over: those before it.
        let replaced: Vec<u8> = reg[..pos].to_vec();
        if replace && tr.target == Target::Patched {
            // Unpatch the replaced patches and discard the nops.
            for s in &mut w.stacks {
                s.retain(|e| !(replaced.contains(&e.p) || e.p == tr.p && e.nop));
            }
            for r in &mut w.reg {
                if r.p == tr.p {
                    r.nops = 0;
                } else if replaced.contains(&r.p) {
                    r.enabled = false;
                }
            }
            self.plan
                .complete_replaced(tr.progress, &view, tr.p, tr.target, &mut |s: Step<u8>| {
                    steps.push((s, true))
                });
        }
        if tr.target == Target::Unpatched {
            for s in &mut w.stacks {
                s.retain(|e| e.p != tr.p);
            }
        }
        for t in &mut w.tasks {
            t.state = None;
            t.pending = false;
        }
        if tr.target == Target::Unpatched {
            self.plan
                .complete_replaced(tr.progress, &view, tr.p, tr.target, &mut |s: Step<u8>| {
                    steps.push((s, true))
                });
        }
        self.plan
            .complete_own(tr.progress, &view, tr.p, tr.target, &mut |s: Step<u8>| {
                steps.push((s, true))
            });
        self.run_steps(w, &reg, &steps)?;
        w.trans = None;
        // The frees: who leaves the registry.
        let leaving: Vec<Reg> = match tr.target {
            Target::Unpatched => w.reg.iter().filter(|r| r.p == tr.p).cloned().collect(),
            Target::Patched if replace => w
                .reg
                .iter()
                .filter(|r| replaced.contains(&r.p))
                .cloned()
                .collect(),
            Target::Patched => Vec::new(),
        };
        w.reg.retain(|r| !leaving.contains(r));
        if tr.target == Target::Patched {
            w.reg.iter_mut().find(|r| r.p == tr.p).unwrap().completed = true;
        }
        for r in &leaving {
            for s in &self.def(r.p).states {
                let kept = w.reg.iter().any(|q| self.desc(q.p, s.id).is_some());
                ensure!(
                    !(r.completed && s.block_disable) || kept,
                    "patch {} went away with its block_disable state {}",
                    r.p,
                    s.id
                );
                ensure!(
                    !(replace && tr.target == Target::Patched && s.is_legacy()) || kept,
                    "replace by {} dropped the legacy state {} of {}",
                    tr.p,
                    s.id,
                    r.p
                );
            }
        }
        Ok(())
    }

    /// The version of `f` that task `t` runs now.
    fn task_version(&self, w: &World, t: usize, f: u8) -> Version {
        let stack = &w.stacks[f as usize];
        let in_trans = w
            .trans
            .is_some_and(|tr| stack.last().is_some_and(|e| e.p == tr.p));
        ver(self.plan.version(stack, in_trans, w.tasks[t].state))
    }

    /// Task `t` runs one consistent world.
    fn consistent(&self, w: &World, t: usize) -> R<()> {
        let tp = w.trans.map(|tr| tr.p);
        let world = |f: usize, with: bool| {
            ver(w.stacks[f]
                .iter()
                .rev()
                .copied()
                .find(|e| with || Some(e.p) != tp))
        };
        let task = w.tasks[t];
        let nf = self.u.funcs.len();
        let runs: Vec<Option<Version>> = (0..nf as u8)
            .map(|f| self.loaded(w, f).then(|| self.task_version(w, t, f)))
            .collect();
        let fits = |with: bool| {
            (0..nf).all(|f| runs[f].is_none_or(|v| v == world(f, with)))
                && task.frame.is_none_or(|(f, v)| v == world(f as usize, with))
        };
        ensure!(
            fits(true) || fits(false),
            "task {t} ({:?}, in {:?}) runs a mix: runs {runs:?}, with {:?}, without {:?}",
            task.state,
            task.frame,
            (0..nf).map(|f| world(f, true)).collect::<Vec<_>>(),
            (0..nf).map(|f| world(f, false)).collect::<Vec<_>>(),
        );
        Ok(())
    }

    /// The invariants of a world between two operations.
    pub fn check(&self, w: &World) -> R<()> {
        let carried = |id: StateId| w.reg.iter().any(|r| self.desc(r.p, id).is_some());
        for i in 0..self.u.nstates {
            let id = i as StateId + 1;
            let life = w.life[i];
            ensure!(
                life == Life::Absent || carried(id),
                "state {id} is {life:?} but no registered patch carries it"
            );
            ensure!(
                !w.shadow[i] || carried(id),
                "shadow variables of state {id} outlive every patch carrying it"
            );
            if w.trans.is_none() {
                let want = if carried(id) {
                    Life::Live
                } else {
                    Life::Absent
                };
                ensure!(
                    life == want,
                    "no transition, state {id} is {life:?} instead of {want:?}"
                );
                let is_shadow = w
                    .reg
                    .iter()
                    .any(|r| self.desc(r.p, id).is_some_and(|d| d.is_shadow));
                ensure!(
                    w.shadow[i] == (carried(id) && is_shadow),
                    "no transition, shadow variables of state {id}: {} while carried: {}",
                    w.shadow[i],
                    carried(id)
                );
            }
        }
        // Func stacks: the registered patches' functions, in enable order.
        let mut want = vec![Vec::new(); self.u.funcs.len()];
        for r in &w.reg {
            for (f, nop) in self.funcs(r) {
                if self.loaded(w, f) {
                    want[f as usize].push(Entry { p: r.p, nop });
                }
            }
        }
        ensure!(
            w.stacks == want,
            "func stacks are {:?} instead of {want:?}",
            w.stacks
        );
        for (t, task) in w.tasks.iter().enumerate() {
            match w.trans {
                None => ensure!(
                    task.state.is_none() && !task.pending,
                    "no transition, task {t} is {task:?}"
                ),
                Some(tr) => ensure!(
                    task.state.is_some() && task.pending == (task.state != Some(tr.target)),
                    "task {t} is {task:?} in a transition to {:?}",
                    tr.target
                ),
            }
            if !task.stale {
                self.consistent(w, t)?;
            }
        }
        for r in &w.reg {
            let in_trans = w.trans.is_some_and(|tr| tr.p == r.p);
            ensure!(
                r.enabled || in_trans,
                "patch {} registered but disabled outside of a transition",
                r.p
            );
        }
        Ok(())
    }
}

/// What an exploration did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Distinct worlds reached.
    pub worlds: usize,
    /// Operations applied.
    pub ops: usize,
}

/// Applies every sequence of operations of up to `depth` operations from
/// the empty world, breadth first, each distinct world expanded once.
pub fn explore<L: Plan + ?Sized>(u: &Universe, plan: &L, depth: usize) -> Result<Stats, Failure> {
    let m = Model { u, plan };
    let w0 = m.initial();
    // For the traces: the parent of each world and the operation.
    let mut parents: Vec<(usize, Option<Op>)> = vec![(0, None)];
    let mut seen: HashSet<World> = HashSet::new();
    seen.insert(w0.clone());
    let mut frontier = vec![(w0, 0usize)];
    let mut stats = Stats { worlds: 1, ops: 0 };
    let trace = |parents: &Vec<(usize, Option<Op>)>, mut i: usize, last: Op| {
        let mut ops = vec![last];
        while let (p, Some(op)) = parents[i] {
            ops.push(op);
            i = p;
        }
        ops.reverse();
        ops
    };
    for _ in 0..depth {
        let mut next = Vec::new();
        for (w, idx) in &frontier {
            for op in m.ops(w) {
                stats.ops += 1;
                match m.apply(w, op) {
                    Err(msg) => {
                        return Err(Failure {
                            msg,
                            trace: trace(&parents, *idx, op),
                        })
                    }
                    Ok(None) => {}
                    Ok(Some(nw)) => {
                        if !seen.contains(&nw) {
                            seen.insert(nw.clone());
                            parents.push((*idx, Some(op)));
                            next.push((nw, parents.len() - 1));
                        }
                    }
                }
            }
        }
        stats.worlds += next.len();
        frontier = next;
    }
    Ok(stats)
}

/// A small PRNG (xorshift64*), seeded.
pub struct Rng(u64);

impl Rng {
    /// A generator; the seed may be anything.
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A number below `n` (> 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }
}

impl Universe {
    /// A random universe: `np` patches over `nf` functions (the last in the
    /// module) and `ns` state ids, `nt` tasks.  An id has the same kind
    /// (shadow or not, legacy or not) in every patch; `block_disable` and
    /// versions vary.
    pub fn random(rng: &mut Rng, np: usize, nf: usize, ns: usize, nt: usize) -> Self {
        let kinds: Vec<u64> = (0..ns).map(|_| rng.next_u64() % 4).collect();
        let patches = (0..np)
            .map(|_| {
                let mut funcs: Vec<u8> = (0..nf as u8).filter(|_| rng.chance(1, 2)).collect();
                if funcs.is_empty() {
                    funcs.push(rng.below(nf) as u8);
                }
                let mut ids: Vec<StateId> =
                    (1..=ns as StateId).filter(|_| rng.chance(1, 2)).collect();
                // Any array order.
                for i in (1..ids.len()).rev() {
                    ids.swap(i, rng.below(i + 1));
                }
                let states = ids
                    .into_iter()
                    .map(|id| {
                        let mut s = match kinds[id as usize - 1] {
                            0 => shadow(id),
                            1 => legacy(id, rng.below(3) as u32),
                            _ => st(id),
                        };
                        s.block_disable = s.has_callbacks && rng.chance(1, 4);
                        s
                    })
                    .collect();
                PatchDef {
                    replace: rng.chance(1, 2),
                    funcs,
                    states,
                }
            })
            .collect();
        let mut funcs = vec![false; nf];
        if nf > 1 {
            funcs[nf - 1] = true;
        }
        Universe {
            patches,
            funcs,
            tasks: nt,
            nstates: ns,
        }
    }
}

/// A random run of `len` operations from the empty world: the number of
/// operations that changed the world.
pub fn random_run<L: Plan + ?Sized>(
    u: &Universe,
    plan: &L,
    rng: &mut Rng,
    len: usize,
) -> Result<usize, Failure> {
    let m = Model { u, plan };
    let mut w = m.initial();
    let mut trace = Vec::new();
    let mut changed = 0;
    for _ in 0..len {
        let ops = m.ops(&w);
        // Loads rarely fail; a transition is mostly let run.
        let op = ops[rng.below(ops.len())];
        let op = match op {
            Op::Load(p, Fail::Pre(_) | Fail::Late) if rng.chance(2, 3) => Op::Load(p, Fail::No),
            op => op,
        };
        trace.push(op);
        match m.apply(&w, op) {
            Err(msg) => return Err(Failure { msg, trace }),
            Ok(None) => {}
            Ok(Some(nw)) => {
                w = nw;
                changed += 1;
            }
        }
    }
    Ok(changed)
}

/// Describes a universe, for messages.
pub fn describe(u: &Universe) -> String {
    let mut s = String::new();
    for (i, p) in u.patches.iter().enumerate() {
        let _ = write!(
            s,
            "P{i}{} funcs {:?} states [",
            if p.replace { " (replace)" } else { "" },
            p.funcs
        );
        for d in &p.states {
            let _ = write!(
                s,
                " {}{}{}{}{}",
                d.id,
                if d.is_shadow { " shadow" } else { "" },
                if d.block_disable { " block" } else { "" },
                if d.is_legacy() { " legacy" } else { "" },
                if d.version != 0 {
                    format!(" v{}", d.version)
                } else {
                    String::new()
                }
            );
        }
        s.push_str(" ]; ");
    }
    s
}
