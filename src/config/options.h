/* SPDX-License-Identifier: MIT */
/*
 * The option table shared by the two halves of the config layer: options.c
 * describes every key of sipwake.conf once (type, offset in struct
 * sw_config, default, bounds, reloadability, doc), and config.c walks it to
 * apply defaults, validate a file, reload and free. Private to src/config/
 * and its unit test; the rest of the daemon only sees include/sipwake/config.h.
 */
#ifndef SIPWAKE_CONFIG_OPTIONS_H
#define SIPWAKE_CONFIG_OPTIONS_H

#include <stddef.h>

enum config_type {
	CONFIG_BOOL,
	CONFIG_INT,
	CONFIG_STRING,
	CONFIG_LIST, /* list or array of strings */
};

/* Flags of one option. */
#define CONFIG_F_RELOAD 0x01 /* applied by config_reload() (SIGHUP) */
#define CONFIG_F_FILE 0x02   /* names a file that must exist and be readable */
#define CONFIG_F_SECRET 0x04 /* ... and no access for others (key files: keyfile.h) */

struct config_option {
	const char *name; /* dotted path, e.g. "push.apns.key_id" */
	enum config_type type;
	size_t offset; /* into struct sw_config */
	unsigned flags;
	int def_int;                 /* CONFIG_BOOL (0/1) and CONFIG_INT */
	const char *def_str;         /* CONFIG_STRING */
	const char *const *def_list; /* CONFIG_LIST, NULL-terminated */
	int min, max;                /* CONFIG_INT bounds, inclusive */
	const char *const *values;   /* CONFIG_STRING: allowed values or NULL */
	const char *doc;             /* one line for the reference */
};

extern const struct config_option config_options[];
extern const size_t config_options_count;

/* The option with this dotted name, or NULL. */
const struct config_option *config_option_find(const char *name);

/* True when name is a group of the table ("push", "push.apns", ...). */
int config_option_is_group(const char *name);

#endif
