/* SPDX-License-Identifier: MIT */
/*
 * sipwake_confref: print the configuration reference (docs/config.md) from
 * the option table. Regenerate the committed file with
 *   build/tests/sipwake_confref > docs/config.md
 * test_config fails while the two disagree.
 */
#include <stdio.h>

#include "sipwake/config.h"

int main(void)
{
	config_write_reference(stdout);
	return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}
