/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the config loader (src/config/config.c) on arbitrary
 * file contents. Each input is written to main.conf in a private
 * directory (made once, removed at exit) that also holds what an
 * @include may name: a valid fragment, one with a syntax error, one that
 * includes another, a directory and a symlink to it (libconfig's scanner
 * exit(2)s on those, so config.c must refuse them first). Invariants:
 * config_load() returns (never exits, never crashes), a refused file has
 * at least one error line on stderr, and a loaded one is freed whole.
 * stderr is a memory stream during each call, so that the loader's error
 * lines neither slow the run down nor hide libFuzzer's own output.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "sipwake/config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/sipwake-fuzz-config-XXXXXX";
static char main_path[64];

static const char *const fragments[][2] = {
	{"ok.conf", "sip: { domains = [\"example.com\"]; };\n"},
	{"bad.conf", "sip: { domains = [\"example.com\" };\n"},
	{"nested.conf", "@include \"ok.conf\"\nlog: { level = \"info\"; };\n"},
	{"empty.conf", ""},
};

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "w");

	if (!f)
		abort();
	if (len && fwrite(data, 1, len, f) != len)
		abort();
	fclose(f);
}

static void remove_dir(void)
{
	char path[128];

	for (size_t i = 0; i < sizeof(fragments) / sizeof(fragments[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, fragments[i][0]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/link", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/subdir", dir);
	rmdir(path);
	unlink(main_path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[128];

	if (!mkdtemp(dir))
		abort();
	atexit(remove_dir);
	for (size_t i = 0; i < sizeof(fragments) / sizeof(fragments[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, fragments[i][0]);
		write_file(path, fragments[i][1], strlen(fragments[i][1]));
	}
	snprintf(path, sizeof(path), "%s/subdir", dir);
	if (mkdir(path, 0700) < 0)
		abort();
	snprintf(path, sizeof(path), "%s/link", dir);
	if (symlink("subdir", path) < 0)
		abort();
	snprintf(main_path, sizeof(main_path), "%s/main.conf", dir);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sw_config cfg;
	FILE *saved = stderr, *err;
	char *text = NULL;
	size_t text_len = 0;
	int rc;

	write_file(main_path, data, size);
	err = open_memstream(&text, &text_len);
	if (!err)
		return 0;
	stderr = err;
	rc = config_load(&cfg, main_path);
	stderr = saved;
	fclose(err);
	if (rc < 0 && text_len == 0)
		abort(); /* refused without saying why */
	if (rc == 0)
		config_cleanup(&cfg);
	free(text);
	return 0;
}
