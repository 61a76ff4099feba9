// SPDX-License-Identifier: GPL-2.0

use crate::state_rules::*;

fn st(id: StateId) -> StateDesc {
    StateDesc {
        id,
        version: 0,
        has_callbacks: true,
        is_shadow: false,
        block_disable: false,
    }
}

fn legacy(id: StateId, version: u32) -> StateDesc {
    StateDesc {
        version,
        has_callbacks: false,
        ..st(id)
    }
}

#[test]
fn own_ids_must_be_nonzero_and_unique() {
    assert_eq!(check_own([st(1), st(2)].into_iter()), Ok(()));
    assert_eq!(check_own([].into_iter()), Ok(()));
    assert_eq!(
        check_own([st(1), st(0)].into_iter()),
        Err(StateError::ZeroId)
    );
    assert_eq!(
        check_own([st(1), st(2), st(1)].into_iter()),
        Err(StateError::DuplicateId(1))
    );
}

#[test]
fn version_must_not_go_down() {
    let new = [legacy(7, 1)];
    let old = [legacy(7, 2)];
    assert_eq!(
        check_against(new.into_iter(), false, old.into_iter()),
        Err(StateError::Downgrade {
            id: 7,
            installed: 2,
            new: 1
        })
    );
    assert_eq!(
        check_against(old.into_iter(), true, new.into_iter()),
        Ok(())
    );
}

#[test]
fn replace_may_drop_only_undoable_states() {
    let blocking = StateDesc {
        block_disable: true,
        ..st(3)
    };
    let shadow = StateDesc {
        is_shadow: true,
        has_callbacks: false,
        ..st(4)
    };
    let none = [st(9)];
    let check =
        |old: StateDesc, replace| check_against(none.into_iter(), replace, [old].into_iter());
    assert_eq!(check(st(1), true), Ok(()));
    assert_eq!(check(shadow, true), Ok(()));
    assert_eq!(check(blocking, true), Err(StateError::DropsBlocking(3)));
    assert_eq!(check(legacy(5, 1), true), Err(StateError::DropsLegacy(5)));
    // A patch that does not replace leaves the installed states in place.
    assert_eq!(check(blocking, false), Ok(()));
    assert_eq!(check(legacy(5, 1), false), Ok(()));
    // Carrying the state with block_disable cleared lifts the block.
    let lifted = [st(3)];
    assert_eq!(
        check_against(lifted.into_iter(), true, [blocking].into_iter()),
        Ok(())
    );
}
