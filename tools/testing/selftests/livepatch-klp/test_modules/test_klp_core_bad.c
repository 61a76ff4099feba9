// SPDX-License-Identifier: GPL-2.0
/*
 * A livepatch module that hands klp_enable_patch() the structure chosen
 * by its "case" parameter; every case but "good" and "twice" is malformed
 * and must make klp_enable_patch(), and so the module's init, fail:
 *
 *   good       patches cmdline_proc_show()
 *   empty      an empty array of objects: accepted, the patch does nothing
 *   noobjs     the patch has no objects (objs is NULL)
 *   nofuncs    a module object without functions (funcs is NULL; vmlinux
 *              without functions would be the end of the array)
 *   noname     a function without old_name
 *   nonew      a function without new_func
 *   unknown    a function name that kallsyms does not know
 *   sympos     old_sympos 2 of a function that exists once
 *   ambiguous  the function named by the "func" parameter, which exists
 *              more than once, with old_sympos 0
 *   longobj    an object name of MODULE_NAME_LEN characters or more
 *   longfunc   a function name of KSYM_NAME_LEN characters or more
 *   dupfunc    the same function twice in one object
 *   dupobj     vmlinux twice in one patch
 *   modunknown an object test_klp_core_target (which must be loaded) with
 *              one function of it and then one that it does not have
 *   modsympos  an object test_klp_core_target with old_sympos 2 of a
 *              function that it has once, then a name that it does not
 *              have: only the first error, in the order of the array, is
 *              reported
 *
 * Writing to the "again" parameter calls klp_enable_patch() once more on the
 * patch, which the module keeps registered: the call's result is logged and
 * returned to the writer.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/kallsyms.h>
#include <linux/livepatch.h>
#include <linux/seq_file.h>
#include <linux/string.h>

static char *bad_case = "good";
module_param_named(case, bad_case, charp, 0400);
MODULE_PARM_DESC(case, "which patch to hand over (default: good)");

static char *func = "";
module_param(func, charp, 0400);
MODULE_PARM_DESC(func, "the ambiguous function name of case=ambiguous");

static int test_klp_core_bad_cmdline(struct seq_file *m, void *v)
{
	seq_printf(m, "%s: this is a good patch\n", THIS_MODULE->name);
	return 0;
}

static const char *test_klp_core_bad_target(void)
{
	return "patched by a malformed patch";
}

/* Room for every case: two functions and two objects, each terminated. */
static struct klp_func funcs[3];
static struct klp_func funcs2[2];
static struct klp_object objs[3];
static char long_name[KSYM_NAME_LEN + 1];

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int again_set(const char *val, const struct kernel_param *kp)
{
	int ret;

	/* Not from insmod's command line: the init registers the patch. */
	if (THIS_MODULE->state != MODULE_STATE_LIVE)
		return -EBUSY;
	ret = klp_enable_patch(&patch);
	pr_info("klp_enable_patch() again: %d\n", ret);
	return ret;
}

static const struct kernel_param_ops again_ops = {
	.set = again_set,
};
module_param_cb(again, &again_ops, NULL, 0200);
MODULE_PARM_DESC(again, "write anything: klp_enable_patch() on the patch again");

static int set_up(const char *c)
{
	funcs[0].old_name = "cmdline_proc_show";
	funcs[0].new_func = test_klp_core_bad_cmdline;
	objs[0].funcs = funcs;

	if (!strcmp(c, "good")) {
		return 0;
	} else if (!strcmp(c, "empty")) {
		objs[0].funcs = NULL;
	} else if (!strcmp(c, "noobjs")) {
		patch.objs = NULL;
	} else if (!strcmp(c, "nofuncs")) {
		objs[0].name = "test_klp_core_target";
		objs[0].funcs = NULL;
	} else if (!strcmp(c, "noname")) {
		funcs[0].old_name = NULL;
	} else if (!strcmp(c, "nonew")) {
		funcs[0].new_func = NULL;
	} else if (!strcmp(c, "unknown")) {
		funcs[0].old_name = "test_klp_core_no_such_function";
	} else if (!strcmp(c, "sympos")) {
		funcs[0].old_sympos = 2;
	} else if (!strcmp(c, "ambiguous")) {
		if (!*func)
			return -EINVAL;
		funcs[0].old_name = func;
	} else if (!strcmp(c, "longobj")) {
		/* MODULE_NAME_LEN characters, one too many with the NUL. */
		memset(long_name, 'm', MODULE_NAME_LEN);
		objs[0].name = long_name;
	} else if (!strcmp(c, "longfunc")) {
		memset(long_name, 'f', KSYM_NAME_LEN);
		funcs[0].old_name = long_name;
	} else if (!strcmp(c, "dupfunc")) {
		funcs[1] = funcs[0];
	} else if (!strcmp(c, "dupobj")) {
		funcs2[0] = funcs[0];
		objs[1].funcs = funcs2;
	} else if (!strcmp(c, "modunknown") || !strcmp(c, "modsympos")) {
		objs[0].name = "test_klp_core_target";
		funcs[0].old_name = "test_klp_core_target_a";
		funcs[0].new_func = test_klp_core_bad_target;
		funcs[1].old_name = "test_klp_core_no_such_function";
		funcs[1].new_func = test_klp_core_bad_target;
		if (!strcmp(c, "modsympos")) {
			funcs[0].old_name = "test_klp_core_target_b";
			funcs[0].old_sympos = 2;
		}
	} else {
		return -EINVAL;
	}
	return 0;
}

static int __init test_klp_core_bad_init(void)
{
	int ret;

	ret = set_up(bad_case);
	if (ret) {
		pr_err("unknown case '%s'\n", bad_case);
		return ret;
	}
	return klp_enable_patch(&patch);
}

static void __exit test_klp_core_bad_exit(void)
{
}

module_init(test_klp_core_bad_init);
module_exit(test_klp_core_bad_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("Livepatch core test: malformed patches");
