// SPDX-License-Identifier: GPL-2.0
/*
 * test_klp_states_a - one of the livepatch state test modules; the body,
 * with its module parameters, is in test_klp_states.h.
 */

#include "test_klp_states.h"
