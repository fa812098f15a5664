/* SPDX-License-Identifier: MIT */
/* sipwaked: entry point (being built). */
#include <stdio.h>
int main(void)
{
	printf("sipwaked %s\n", SIPWAKE_VERSION);
	return 0;
}
