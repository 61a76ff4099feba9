// SPDX-License-Identifier: GPL-2.0
/*
 * Livepatch test: the target module of the klp relocation tests
 * (test-relocs.sh).  Its static symbols test_klp_reloc_mod_value and
 * test_klp_reloc_mod_report() are not exported: the livepatch modules
 * reach them through klp relocations for this module.  The init function
 * and a read of the parameter "report" call test_klp_reloc_mod_report(),
 * which the livepatches replace.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sysfs.h>

static int test_klp_reloc_mod_value __used = 0x7e57;

static noinline void test_klp_reloc_mod_report(void)
{
	pr_info("%s: not patched\n", __func__);
}

static int report_get(char *buf, const struct kernel_param *kp)
{
	test_klp_reloc_mod_report();
	return sysfs_emit(buf, "reported\n");
}

static const struct kernel_param_ops report_ops = {
	.get = report_get,
};

module_param_cb(report, &report_ops, NULL, 0400);
MODULE_PARM_DESC(report, "Calls test_klp_reloc_mod_report() when read");

static int test_klp_reloc_mod_init(void)
{
	test_klp_reloc_mod_report();
	return 0;
}

static void test_klp_reloc_mod_exit(void)
{
}

module_init(test_klp_reloc_mod_init);
module_exit(test_klp_reloc_mod_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Livepatch test: target module of klp relocations");
