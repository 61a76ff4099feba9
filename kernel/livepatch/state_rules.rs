// SPDX-License-Identifier: GPL-2.0

//! Compatibility rules of livepatch states.
//!
//! Pure code: it knows nothing of the kernel, so the Rust livepatch core and
//! the host-side model (`tools/klp-model`) compile this very file.  The rules
//! are those of `Documentation/livepatch/system-state.rst`:
//!
//! - a patch's state ids are non-zero and unique within the patch;
//! - a state carried by an installed patch and by the new one must not go
//!   down in `version`;
//! - a replacing patch that lacks a state of an installed patch is refused
//!   when that state blocks disabling, or when it is a legacy state (no
//!   callbacks, not owning shadow variables): nothing could undo it.

/// Identifier of a state, as `struct klp_state::id`.
pub type StateId = u64;

/// What the rules need to know of one `struct klp_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateDesc {
    /// The state's id.
    pub id: StateId,
    /// The legacy version number (0 for states of the new model).
    pub version: u32,
    /// Whether any of the state's callbacks is set.
    pub has_callbacks: bool,
    /// Whether the state owns the shadow variables with its id.
    pub is_shadow: bool,
    /// Whether the state forbids disabling the patch that carries it.
    pub block_disable: bool,
}

impl StateDesc {
    /// A legacy state only records that a change was made: nothing in the
    /// core can undo it when the state goes away.
    pub fn is_legacy(&self) -> bool {
        !self.has_callbacks && !self.is_shadow
    }
}

/// Why a patch's states are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateError {
    /// A state has id 0.
    ZeroId,
    /// Two states of one patch have this id.
    DuplicateId(StateId),
    /// The new patch carries the state with a lower version.
    Downgrade {
        /// The state.
        id: StateId,
        /// Version of the installed patch.
        installed: u32,
        /// Version of the new patch.
        new: u32,
    },
    /// A replacing patch lacks a state that blocks disabling.
    DropsBlocking(StateId),
    /// A replacing patch lacks a legacy state.
    DropsLegacy(StateId),
}

/// Checks the states of one patch on their own: ids non-zero and unique.
pub fn check_own<I>(states: I) -> Result<(), StateError>
where
    I: Iterator<Item = StateDesc> + Clone,
{
    for (i, s) in states.clone().enumerate() {
        if s.id == 0 {
            return Err(StateError::ZeroId);
        }
        if states.clone().skip(i + 1).any(|o| o.id == s.id) {
            return Err(StateError::DuplicateId(s.id));
        }
    }
    Ok(())
}

/// Checks a new patch's states against the states of one installed patch.
///
/// `replace` tells whether the new patch atomically replaces the installed
/// ones.  Call it once per installed patch.
pub fn check_against<N, O>(new: N, replace: bool, installed: O) -> Result<(), StateError>
where
    N: Iterator<Item = StateDesc> + Clone,
    O: Iterator<Item = StateDesc>,
{
    for old in installed {
        match new.clone().find(|s| s.id == old.id) {
            Some(s) if s.version < old.version => {
                return Err(StateError::Downgrade {
                    id: old.id,
                    installed: old.version,
                    new: s.version,
                })
            }
            Some(_) => {}
            None if !replace => {}
            None if old.block_disable => return Err(StateError::DropsBlocking(old.id)),
            None if old.is_legacy() => return Err(StateError::DropsLegacy(old.id)),
            None => {}
        }
    }
    Ok(())
}
