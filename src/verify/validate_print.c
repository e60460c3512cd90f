/*
 * validate_print: pgtide validate's report on stdout, text for people or
 * JSON for programs. Formats what a finished run found: never queries a
 * server, never logs.
 */
#include "verify/validate_int.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/clock.h"
#include "base/json.h"

void
print_json(const VRun *r, FILE *out)
{
	ValidateSummary s;
	int64_t ranges, checked;

	result_summarize(r, &s, &ranges, &checked);
	if (r->run_id < 0)
		fputs("{\"run_id\":null,\"task\":", out);
	else
		fprintf(out, "{\"run_id\":%" PRId64 ",\"task\":", r->run_id);
	json_write_string(out, r->cfg->task);
	fprintf(out,
	        ",\"mode\":\"full\",\"sample\":%g,\"cdc\":%s,\"tables\":%d,"
	        "\"tables_differing\":%d,\"ranges\":%" PRId64
	        ",\"ranges_checked\":%" PRId64 ",\"rows_source\":%" PRId64
	        ",\"rows_target\":%" PRId64 ",\"differences\":%" PRId64
	        ",\"unsettled\":%" PRId64 ",\"rereads\":%" PRId64
	        ",\"seconds\":%.3f,\"results\":[",
	        r->cfg->validate_sample, r->cdc ? "true" : "false", s.tables,
	        s.tables_differing, ranges, checked, s.rows_source, s.rows_target,
	        s.differences, s.unsettled, atomic_load(&r->rereads),
	        (double) (clock_ms() - r->started_ms) / 1000.0);
	for (int i = 0; i < r->ntables; i++)
	{
		const VTable *t = &r->tables[i];

		fputs(i ? ",{\"table\":" : "{\"table\":", out);
		json_write_string(out, t->name);
		fputs(",\"target\":", out);
		json_write_string(out, t->tgt_name);
		fputs(",\"sources\":[", out);
		for (int k = 0; k < t->nsrc; k++)
		{
			if (k)
				fputc(',', out);
			json_write_string(out, t->src_names[k]);
		}
		fprintf(out, "],\"status\":\"%s\",\"key\":", vstatus_names[t->status]);
		if (t->keyed)
		{
			fputc('[', out);
			for (int k = 0; k < t->nkeys; k++)
			{
				if (k)
					fputc(',', out);
				json_write_string(out, t->key_names[k]);
			}
			fputc(']', out);
		}
		else
			fputs("null", out);
		fputs(",\"detail\":", out);
		json_write_string(out, t->problem);
		fprintf(out,
		        ",\"ranges\":%d,\"ranges_checked\":%d,\"rows_source\":%" PRId64
		        ",\"rows_target\":%" PRId64 ",\"differences\":%" PRId64
		        ",\"unsettled\":%" PRId64 ",\"unsettled_key\":",
		        result_ranges(t), t->checks_done, t->res.rows_src,
		        t->res.rows_tgt, t->res.differences, t->res.unsettled);
		json_write_string(out, t->res.unsettled_key);
		fputs(",\"rows\":[", out);
		for (int j = 0; j < t->res.nshown; j++)
		{
			const VDiff *d = &t->res.shown[j];

			fprintf(out, "%s{\"kind\":\"%s\"", j ? "," : "",
			        vkind_names[d->kind]);
			if (t->keyed)
			{
				fputs(",\"key\":{", out);
				for (int k = 0; k < t->nkeys; k++)
				{
					if (k)
						fputc(',', out);
					json_write_string(out, t->key_names[k]);
					fputc(':', out);
					json_write_string(out, d->key ? d->key[k] : NULL);
				}
				fputc('}', out);
			}
			else
			{
				fputs(",\"row\":", out);
				json_write_string(out, d->row);
				fprintf(out,
				        ",\"source_copies\":%" PRId64
				        ",\"target_copies\":%" PRId64,
				        d->src_copies, d->tgt_copies);
			}
			fputc('}', out);
		}
		fputs("]}", out);
	}
	fputs("],\"diverged\":[", out);
	for (int i = 0, shown = 0; i < r->io.n; i++)
	{
		const StateInsertOnly *t = &r->io.tables[i];
		char name[300];

		if (!t->diverged)
			continue;
		snprintf(name, sizeof(name), "%s.%s", t->src_schema, t->src_name);
		fputs(shown++ ? ",{\"table\":" : "{\"table\":", out);
		json_write_string(out, name);
		fputs(",\"reason\":", out);
		json_write_string(out, t->reason);
		fputc('}', out);
	}
	fputs("]}\n", out);
}

void
print_text(const VRun *r, FILE *out)
{
	static const char *const kind_text[] = {"missing on the target",
	                                        "extra on the target", "different"};
	ValidateSummary s;
	int64_t ranges, checked;

	result_summarize(r, &s, &ranges, &checked);
	fprintf(out, "pgtide validate: task %s, %d tables, %" PRId64 " ranges",
	        r->cfg->task, s.tables, ranges);
	if (r->cfg->validate_sample < 1.0)
		fprintf(out, " (a sample: %" PRId64 " checked)", checked);
	fprintf(out, "%s\n",
	        r->cdc ? ", rechecked against the running change stream" : "");
	for (int i = 0; i < r->ntables; i++)
	{
		const VTable *t = &r->tables[i];

		if (t->problem != NULL)
		{
			fprintf(out, "  %-40s %-9s %s\n", t->name, "DIFFERENT", t->problem);
			continue;
		}
		if (t->res.unsettled > 0)
			fprintf(out,
			        "  %-40s %-9s %" PRId64 " rows the source changed at "
			        "every read, such as %s: not compared\n",
			        t->name, "changing", t->res.unsettled,
			        t->res.unsettled_key ? t->res.unsettled_key : "?");
		if (t->status == VS_EQUAL)
		{
			fprintf(out, "  %-40s %-9s %" PRId64 " rows%s\n", t->name, "equal",
			        t->res.rows_src, t->keyed ? "" : " (no key)");
			continue;
		}
		fprintf(out,
		        "  %-40s %-9s %" PRId64 " rows on the source, %" PRId64
		        " on the target: %" PRId64 " rows differ\n",
		        t->name, "DIFFERENT", t->res.rows_src, t->res.rows_tgt,
		        t->res.differences);
		for (int j = 0; j < t->res.nshown; j++)
		{
			const VDiff *d = &t->res.shown[j];

			if (t->keyed)
			{
				char *k = result_key_text(t, d);

				fprintf(out, "      %-22s %s\n", kind_text[d->kind],
				        k ? k : "?");
				free(k);
			}
			else
				fprintf(out,
				        "      %-22s %s (%" PRId64 " on the source, %" PRId64
				        " on the target)\n",
				        kind_text[d->kind], d->row ? d->row : "?",
				        d->src_copies, d->tgt_copies);
		}
		if (t->res.differences > t->res.nshown)
			fprintf(out, "      ... and %" PRId64 " more\n",
			        t->res.differences - t->res.nshown);
	}
	for (int i = 0; i < r->io.n; i++)
	{
		const StateInsertOnly *t = &r->io.tables[i];
		char name[300];

		if (!t->diverged)
			continue;
		snprintf(name, sizeof(name), "%s.%s", t->src_schema, t->src_name);
		fprintf(out, "  %-40s %-9s %s\n", name, "DIVERGED", t->reason);
	}
	if (s.unsettled > 0)
		fprintf(out,
		        "not compared: %" PRId64 " rows the application changed at "
		        "every read; validate again when it writes less, or at "
		        "cutover, where the source holds still\n",
		        s.unsettled);
	if (s.tables_differing == 0 && r->run_id < 0)
		fprintf(out, "equal: %" PRId64 " rows on each side\n", s.rows_source);
	else if (s.tables_differing == 0)
		fprintf(out, "equal: %" PRId64 " rows on each side (run %" PRId64 ")\n",
		        s.rows_source, r->run_id);
	else if (r->run_id < 0)
		fprintf(out, "DIFFERENT: %d of %d tables, %" PRId64 " differences\n",
		        s.tables_differing, s.tables, s.differences);
	else
		fprintf(out,
		        "DIFFERENT: %d of %d tables, %" PRId64
		        " differences (run %" PRId64 ", recorded in %s."
		        "validation_differences)\n",
		        s.tables_differing, s.tables, s.differences, r->run_id,
		        r->cfg->state_schema);
}
