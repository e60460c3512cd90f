/*
 * slots: the line a run of copy, migrate or follow leaves last on stderr
 * when the task's replication slot is still on the source: how much WAL it
 * holds there, and the exact command that resumes the task or drops it.
 * No slot is left behind unannounced.
 *
 * The commands it prints are the user's own arguments, with every password
 * taken out of the connection strings: it must never print a password.
 */
#include "cmd/task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/units.h"
#include "cmd/cli.h"
#include "pg/pg.h"
#include "pg/stream.h"

/* room for a command line of the user's, quoted */
#define SLOTS_COMMAND_MAX ((size_t) 64 << 10)

/*
 * Removes every "password=VALUE" (VALUE plain or single-quoted, spaces
 * around '=' allowed) from a conninfo string or a URI's query, with the
 * separator that joined it to the rest.
 */
static void
drop_conninfo_password(char *s)
{
	char *p = s;

	while ((p = strstr(p, "password")) != NULL)
	{
		char *start = p, *v = p + strlen("password"), *end;

		/* a whole keyword: at the start or after a space or separator */
		if ((p != s && p[-1] != ' ' && p[-1] != '?' && p[-1] != '&') ||
		    v[strspn(v, " ")] != '=')
		{
			p = v;
			continue;
		}
		v += strspn(v, " ") + 1;
		end = v + strspn(v, " ");
		if (*end == '\'')
		{
			for (end++; *end != '\0' && *end != '\''; end++)
				if (*end == '\\' && end[1] != '\0')
					end++;
			end += *end == '\'';
		}
		else
			end += strcspn(end, " &");
		if (*end == '&')
			end++; /* "?password=x&a=b" -> "?a=b" */
		else if (start != s && (start[-1] == '&' || start[-1] == '?'))
			start--; /* "?a=b&password=x" -> "?a=b" */
		else
		{
			end += strspn(end, " ");
			while (*end == '\0' && start != s && start[-1] == ' ')
				start--; /* "a=b password=x" -> "a=b" */
		}
		memmove(start, end, strlen(end) + 1);
		p = start;
	}
}

/*
 * A connection string without its password: the user:password@ of a URI
 * loses ":password", a password parameter goes. Returns malloc'd text, or
 * NULL when out of memory.
 */
static char *
without_password(const char *conn)
{
	char *s = strdup(conn);
	char *scheme;

	if (s == NULL)
		return NULL;
	scheme = strstr(s, "://");
	if (scheme != NULL && (strncmp(s, "postgresql://", 13) == 0 ||
	                       strncmp(s, "postgres://", 11) == 0))
	{
		char *auth = scheme + 3;
		size_t hostpart = strcspn(auth, "/?");
		char *at = NULL;

		/* the last '@' before the path: the userinfo ends there */
		for (size_t i = 0; i < hostpart; i++)
			if (auth[i] == '@')
				at = auth + i;
		if (at != NULL)
		{
			char *colon = memchr(auth, ':', (size_t) (at - auth));

			if (colon != NULL)
				memmove(colon, at, strlen(at) + 1);
		}
	}
	drop_conninfo_password(s);
	return s;
}

/* Appends one shell word: as it is when safe, else in single quotes. */
static void
add_word(Buf *b, const char *w)
{
	const char *safe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                   "0123456789_./:=@%+,-";

	buf_add_str(b, " ", NULL);
	if (*w != '\0' && strspn(w, safe) == strlen(w))
	{
		buf_add_str(b, w, NULL);
		return;
	}
	buf_add_str(b, "'", NULL);
	for (const char *p = w; *p != '\0'; p++)
		if (*p == '\'')
			buf_add_str(b, "'\\''", NULL);
		else
			buf_add(b, p, 1, NULL);
	buf_add_str(b, "'", NULL);
}

/* Whether an option carries a connection string: -s, -d, --source, ... */
static bool
is_conn_option(const char *opt)
{
	return strcmp(opt, "-s") == 0 || strcmp(opt, "-d") == 0 ||
	       strcmp(opt, "--source") == 0 || strcmp(opt, "--target") == 0;
}

/* Whether clean has a use for the option: where and which task. */
static bool
is_clean_option(const char *opt)
{
	return is_conn_option(opt) || strcmp(opt, "-n") == 0 ||
	       strcmp(opt, "--task") == 0 || strcmp(opt, "-c") == 0 ||
	       strcmp(opt, "--config") == 0 || strcmp(opt, "--state-schema") == 0;
}

/* The option's name in "--name=value" or "-xvalue", or the word itself. */
static void
option_name(const char *word, char *out, size_t cap)
{
	if (strncmp(word, "--", 2) == 0)
		snprintf(out, cap, "%.*s", (int) strcspn(word, "="), word);
	else if (word[0] == '-' && word[1] != '\0')
		snprintf(out, cap, "%.2s", word);
	else
		snprintf(out, cap, "%s", word);
}

/*
 * "pgtide COMMAND ARGS": the user's arguments (argv[1..]) with passwords
 * taken out; for clean, only the options that say where and which task.
 */
static void
add_command(Buf *b, const char *command, int argc, char *const *argv,
            bool clean)
{
	buf_add_str(b, "pgtide", NULL);
	add_word(b, command);
	for (int i = 1; i < argc; i++)
	{
		char name[64];
		const char *w = argv[i];
		bool inline_value;
		bool takes_value;
		char *safe;

		option_name(w, name, sizeof(name));
		inline_value = strlen(name) < strlen(w);
		takes_value = !inline_value && cli_option_takes_value(name);
		if (clean && !is_clean_option(name))
		{
			i += takes_value;
			continue;
		}
		if (!is_conn_option(name))
		{
			add_word(b, w);
			if (takes_value && i + 1 < argc)
				add_word(b, argv[++i]);
			continue;
		}
		if (inline_value)
		{
			/* "--source=URI" or "-sURI" */
			size_t off = strlen(name) + (w[strlen(name)] == '=');
			Buf word = BUF_INIT(SLOTS_COMMAND_MAX);

			safe = without_password(w + off);
			buf_add(&word, w, off, NULL);
			buf_add_str(&word, safe != NULL ? safe : "", NULL);
			add_word(b, buf_check(&word, NULL) ? buf_str(&word) : name);
			buf_free(&word);
			free(safe);
			continue;
		}
		add_word(b, w);
		if (i + 1 < argc)
		{
			safe = without_password(argv[++i]);
			add_word(b, safe != NULL ? safe : "");
			free(safe);
		}
	}
}

void
task_slot_notice(const TaskConfig *cfg, const char *command, bool failed,
                 bool interrupted, bool lost, int argc, char *const *argv)
{
	PgConn *src = NULL;
	StreamSlot *slots = NULL;
	Error err = ERR_INIT;
	char slot[128], wal[32];
	const StreamSlot *found = NULL;
	Buf line = BUF_INIT(SLOTS_COMMAND_MAX);
	int n = 0;

	if (cfg->source_uri == NULL || cfg->task == NULL)
		return;
	config_slot_name(cfg, slot, sizeof(slot));
	/* best effort, no retry: the source may be what failed */
	if (!pg_connect(cfg->source_uri, ERR_SOURCE, PG_CONN_SQL, "pgtide", 0, &src,
	                &err) ||
	    !stream_list_slots(src, slot, &slots, &n, &err))
	{
		/* copy makes no slot of its own: only a stream's can be there */
		if (strcmp(command, "copy") != 0)
		{
			buf_printf(&line, NULL,
			           "pgtide: could not look for replication slot \"%s\" "
			           "on the source (%s); if it is there, it holds WAL "
			           "until it is dropped with: ",
			           slot, err.message);
			add_command(&line, "clean", argc, argv, true);
		}
		goto out;
	}
	for (int i = 0; i < n; i++)
		if (strcmp(slots[i].name, slot) == 0 && slots[i].here)
			found = &slots[i];
	if (found == NULL)
		goto out;
	units_format_bytes(found->retained_bytes < 0 ? 0 : found->retained_bytes,
	                   wal, sizeof(wal));
	buf_printf(&line, NULL,
	           "pgtide: replication slot \"%s\" is left on the source and "
	           "holds %s of WAL there; ",
	           slot, wal);
	if (lost)
		buf_add_str(&line,
		            "the task cannot resume from it; drop it with: ", NULL);
	else if (failed || interrupted)
	{
		buf_add_str(&line, "resume with: ", NULL);
		add_command(&line, command, argc, argv, false);
		buf_add_str(&line, "; or drop it with: ", NULL);
	}
	else if (strcmp(command, "copy") == 0)
	{
		/* a task that migrate started keeps its stream's slot */
		buf_add_str(&line, "stream from it with: ", NULL);
		add_command(&line, "migrate", argc, argv, false);
		buf_add_str(&line, "; or drop it with: ", NULL);
	}
	else
		buf_add_str(&line, "drop it with: ", NULL);
	add_command(&line, "clean", argc, argv, true);
out:
	if (buf_check(&line, NULL) && buf_len(&line) > 0)
		log_plain(LOG_LEVEL_WARN, buf_str(&line));
	buf_free(&line);
	free(slots);
	pg_close(src);
}
