/* SPDX-License-Identifier: MIT */
/*
 * Logging: one line per event on stderr (journald picks it up), with a
 * level filter that can change at run time (SIGHUP reload). Never pass a
 * whole push token or key to these functions: use log_token() first.
 */
#ifndef SIPWAKE_LOG_H
#define SIPWAKE_LOG_H

#include <stddef.h>

enum log_level {
	SW_LOG_ERROR = 0,
	SW_LOG_WARN = 1,
	SW_LOG_NOTICE = 2,
	SW_LOG_INFO = 3,
	SW_LOG_DEBUG = 4,
};

/* Parse "error", "warn", "notice", "info", "debug". Returns the level or -1. */
int log_level_parse(const char *name);
/* Name of a level, for messages. */
const char *log_level_name(int level);

/* Set the threshold: messages above it are dropped. */
void log_set_level(int level);
int log_get_level(void);

/* Redirect output to a file (NULL = stderr). Reopened by log_reopen(). */
int log_set_file(const char *path);
/* Reopen the log file after rotation (SIGHUP). No-op for stderr. */
void log_reopen(void);

/* Prefix each line with a timestamp (off under systemd, which adds one). */
void log_set_timestamps(int on);

void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(SW_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(SW_LOG_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(SW_LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(SW_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(SW_LOG_DEBUG, __VA_ARGS__)

/* True when messages of this level would be written (skip costly formatting). */
int log_enabled(int level);

/*
 * Shorten a secret for logs: "abcd…wxyz" (first and last 4 characters).
 * Short or NULL input gives "****" / "-". Writes into buf and returns it.
 */
#define LOG_TOKEN_BUFSZ 16
const char *log_token(const char *token, char buf[LOG_TOKEN_BUFSZ]);

/*
 * Shorten, in place, every push token in SIP text (the values of pn-prid
 * and pn-tok, each part of a Linphone two-token value) the way log_token()
 * does, so that a message trace never shows a whole token. The text only
 * gets shorter.
 */
void log_mask_tokens(char *text);

#endif
