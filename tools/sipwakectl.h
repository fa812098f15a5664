/* SPDX-License-Identifier: MIT */
/* Internals shared by sipwakectl's files. */
#ifndef SIPWAKECTL_H
#define SIPWAKECTL_H

#include <jansson.h>

#define EXIT_DAEMON_ERROR 1
#define EXIT_USAGE 64
#define EXIT_UNAVAILABLE 69
#define EXIT_CONFIG 78

/*
 * "account set|list|delete ..." (SPEC 4.7) on the database the config
 * (config, NULL = the default) names, whether sipwaked runs or not.
 * Returns an answer shaped like the daemon's ({"ok", "result"|"error"}),
 * or NULL with *code set (64 bad usage, 78 the config cannot be read);
 * the reason is printed.
 */
json_t *account_run(const char *config, int argc, char **argv, int *code);

#endif
