/*
 * The reference stays complete and true to the headers: every function declared with
 * ROTOR_API in include/ has a man page in man/ (its own, or a ".so" to the page that
 * documents it), that page names it, shows its prototype exactly as the header declares
 * it and the #include of that header, has every section a reference entry needs, and
 * explains every errno its header comment names (in ERRORS when the call returns it); no
 * page documents a function that no header declares; the docs index links every function.
 * Reads the source tree only.
 */
#include <criterion/criterion.h>

#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FUNCS 512
#define MAX_PAGES 512

struct func {
	char name[64];
	char proto[512];    /* normalised, without ROTOR_API */
	char comment[4096]; /* the last comment before the declaration */
	char header[512];
};

struct page {
	char file[128];   /* e.g. rotor_spawn.3 */
	char target[128]; /* the page it includes with ".so", or "" */
	char *text;       /* whole file, NULL for a .so stub */
};

static struct func funcs[MAX_FUNCS];
static int nfuncs;
static struct page pages[MAX_PAGES];
static int npages;
static int problems;

__attribute__((format(printf, 1, 2))) static void problem(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("reference: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	problems++;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	size_t got = fread(buf, 1, (size_t)n, f);
	buf[got] = 0;
	fclose(f);
	return buf;
}

/* Collapse whitespace to single spaces; no space after '(' or before ')', ',' or ';'. */
static void normalise(char *s)
{
	char *out = s;
	bool space = false;
	for (char *p = s; *p; p++) {
		if (isspace((unsigned char)*p)) {
			space = out != s;
			continue;
		}
		if (space && !strchr("),;", *p) && out[-1] != '(')
			*out++ = ' ';
		space = false;
		*out++ = *p;
	}
	*out = 0;
}

/* ---- headers ---- */

static void parse_header(const char *path, const char *shown)
{
	char *src = slurp(path);
	cr_assert_not_null(src, "cannot read %s", path);
	char comment[4096] = "";
	for (char *p = src; *p;) {
		if (p[0] == '/' && p[1] == '*') {
			char *end = strstr(p + 2, "*/");
			cr_assert_not_null(end, "%s: unterminated comment", shown);
			size_t len = (size_t)(end - p - 2);
			if (len >= sizeof(comment))
				len = sizeof(comment) - 1;
			memcpy(comment, p + 2, len);
			comment[len] = 0;
			p = end + 2;
			continue;
		}
		bool at_line_start = p == src || p[-1] == '\n';
		if (at_line_start && !strncmp(p, "ROTOR_API", 9) && isspace((unsigned char)p[9])) {
			char *semi = strchr(p, ';');
			cr_assert_not_null(semi, "%s: declaration without ';'", shown);
			cr_assert_lt(nfuncs, MAX_FUNCS);
			struct func *f = &funcs[nfuncs++];
			size_t len = (size_t)(semi + 1 - (p + 9));
			cr_assert_lt(len, sizeof(f->proto), "%s: declaration too long", shown);
			memcpy(f->proto, p + 9, len);
			f->proto[len] = 0;
			normalise(f->proto);
			char *paren = strchr(f->proto, '(');
			cr_assert_not_null(paren,
			                   "%s: ROTOR_API on something that is no function: %s",
			                   shown, f->proto);
			char *e = paren;
			while (e > f->proto && isspace((unsigned char)e[-1]))
				e--;
			char *b = e;
			while (b > f->proto && (isalnum((unsigned char)b[-1]) || b[-1] == '_'))
				b--;
			cr_assert_lt((size_t)(e - b), sizeof(f->name));
			memcpy(f->name, b, (size_t)(e - b));
			f->name[e - b] = 0;
			snprintf(f->comment, sizeof(f->comment), "%s", comment);
			snprintf(f->header, sizeof(f->header), "%s", shown);
			p = semi + 1;
			continue;
		}
		p++;
	}
	free(src);
}

static void parse_headers_in(const char *dir, const char *rel)
{
	DIR *d = opendir(dir);
	cr_assert_not_null(d, "cannot open %s", dir);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[1024], shown[512];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		snprintf(shown, sizeof(shown), "%s/%s", rel, de->d_name);
		size_t n = strlen(de->d_name);
		if (de->d_type == DT_DIR)
			parse_headers_in(path, shown);
		else if (n > 2 && !strcmp(de->d_name + n - 2, ".h"))
			parse_header(path, shown);
	}
	closedir(d);
}

/* ---- man pages ---- */

static void load_pages(void)
{
	DIR *d = opendir(ROTOR_SOURCE_DIR "/man");
	cr_assert_not_null(d, "no man/ directory in %s", ROTOR_SOURCE_DIR);
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n < 3 || strcmp(de->d_name + n - 2, ".3"))
			continue;
		cr_assert_lt(npages, MAX_PAGES);
		cr_assert_lt(n, sizeof(pages[0].file), "page name too long: %s", de->d_name);
		struct page *pg = &pages[npages++];
		memcpy(pg->file, de->d_name, n + 1);
		char path[1024];
		int plen = snprintf(path, sizeof(path), "%s/man/%s", ROTOR_SOURCE_DIR, de->d_name);
		cr_assert(plen > 0 && (size_t)plen < sizeof(path), "path too long: %s", de->d_name);
		char *text = slurp(path);
		cr_assert_not_null(text, "cannot read %s", path);
		if (!strncmp(text, ".so man3/", 9)) {
			size_t len = strcspn(text + 9, " \t\n");
			cr_assert_lt(len, sizeof(pg->target));
			memcpy(pg->target, text + 9, len);
			pg->target[len] = 0;
			free(text);
		} else {
			pg->text = text;
		}
	}
	closedir(d);
}

static struct page *find_page(const char *file)
{
	for (int i = 0; i < npages; i++)
		if (!strcmp(pages[i].file, file))
			return &pages[i];
	return NULL;
}

/* The page that documents function `name`: its own, or the one its .so stub names. */
static struct page *page_of(const char *name)
{
	char file[128];
	snprintf(file, sizeof(file), "%.63s.3", name);
	struct page *pg = find_page(file);
	if (pg && !pg->text)
		pg = find_page(pg->target);
	return pg && pg->text ? pg : NULL;
}

/*
 * Plain text of a troff fragment: font macros (.B .I .BI .BR .IR .RB .IB .RI) lose their
 * name and quotes (the alternating ones join their arguments without spaces), other
 * requests vanish, and escapes become what they print.
 */
static void plain(const char *troff, char *out, size_t cap)
{
	size_t n = 0;
#define PUT(c)                                                                                     \
	do {                                                                                       \
		if (n + 1 < cap)                                                                   \
			out[n++] = (c);                                                            \
	} while (0)
	const char *line = troff;
	while (*line) {
		const char *eol = strchr(line, '\n');
		if (!eol)
			eol = line + strlen(line);
		const char *p = line;
		bool macro = *p == '.', joined = false;
		if (macro) {
			size_t mlen = strcspn(p + 1, " \t\n");
			static const char *const alt[] = {"BI", "BR", "IR", "RB", "IB", "RI"};
			bool font = (mlen == 1 && (p[1] == 'B' || p[1] == 'I'));
			for (size_t i = 0; i < 6 && !font; i++)
				if (mlen == 2 && !strncmp(p + 1, alt[i], 2))
					font = joined = true;
			if (!font) {
				line = *eol ? eol + 1 : eol;
				continue;
			}
			p += 1 + mlen;
		}
		bool quoted = false;
		while (p < eol) {
			if (*p == '"' && macro) {
				quoted = !quoted;
				p++;
				continue;
			}
			if (joined && !quoted && (*p == ' ' || *p == '\t')) {
				p++;
				continue;
			}
			if (*p == '\\' && p + 1 < eol) {
				char c = p[1];
				if (c == 'f' && p + 2 < eol) {
					p += 3;
				} else if (c == '-' || c == 'e') {
					PUT(c == '-' ? '-' : '\\');
					p += 2;
				} else if (c == '&' || c == '/' || c == ',') {
					p += 2;
				} else if (c == '(' && p + 3 < eol) {
					PUT(' ');
					p += 4;
				} else {
					PUT(c);
					p += 2;
				}
				continue;
			}
			PUT(*p);
			p++;
		}
		PUT('\n');
		line = *eol ? eol + 1 : eol;
	}
	out[n] = 0;
#undef PUT
}

/* The text of section `name` (".SH NAME" up to the next .SH), as plain text, or NULL. */
static char *section(const struct page *pg, const char *name)
{
	char head[64];
	snprintf(head, sizeof(head), "\n.SH %s\n", name);
	const char *s = strstr(pg->text, head);
	if (!s) {
		snprintf(head, sizeof(head), "\n.SH \"%s\"\n", name);
		s = strstr(pg->text, head);
	}
	if (!s)
		return NULL;
	s += strlen(head);
	const char *e = strstr(s, "\n.SH ");
	size_t len = e ? (size_t)(e - s) : strlen(s);
	char *raw = strndup(s, len);
	char *out = malloc(len * 2 + 16);
	cr_assert(raw && out);
	plain(raw, out, len * 2 + 16);
	free(raw);
	return out;
}

/* Functions named on the NAME line ("a, b \- summary"). */
static int name_line(const struct page *pg, char names[][64], int max)
{
	char *sec = section(pg, "NAME");
	if (!sec)
		return 0;
	char *dash = strstr(sec, " - ");
	if (dash)
		*dash = 0;
	int n = 0;
	for (char *tok = strtok(sec, ", \n"); tok && n < max; tok = strtok(NULL, ", \n"))
		snprintf(names[n++], 64, "%.63s", tok);
	free(sec);
	return n;
}

static bool has_word(const char *text, const char *word)
{
	size_t len = strlen(word);
	for (const char *p = text; (p = strstr(p, word)); p += len) {
		bool before = p == text || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
		bool after = !(isalnum((unsigned char)p[len]) || p[len] == '_');
		if (before && after)
			return true;
	}
	return false;
}

static void load(void)
{
	nfuncs = npages = problems = 0;
	parse_headers_in(ROTOR_SOURCE_DIR "/include", "include");
	cr_assert_gt(nfuncs, 0, "no ROTOR_API declaration found under include/");
	load_pages();
}

/* ---- tests ---- */

Test(reference, every_public_function_has_a_man_page)
{
	load();
	for (int i = 0; i < nfuncs; i++) {
		char file[128];
		snprintf(file, sizeof(file), "%.63s.3", funcs[i].name);
		struct page *pg = find_page(file);
		if (!pg)
			problem("%s (%s) has no man page: write man/%s", funcs[i].name,
			        funcs[i].header, file);
		else if (!page_of(funcs[i].name))
			problem("man/%s is a .so to man3/%s, which does not exist", file,
			        pg->target);
	}
	cr_assert_eq(problems, 0, "%d public functions lack a reference entry (see stderr)",
	             problems);
}

Test(reference, each_page_names_its_functions_and_has_every_section)
{
	static const char *const sections[] = {"NAME",   "SYNOPSIS", "DESCRIPTION", "RETURN VALUE",
	                                       "ERRORS", "CONTEXT",  "SEE ALSO"};
	load();
	for (int i = 0; i < nfuncs; i++) {
		struct page *pg = page_of(funcs[i].name);
		if (!pg)
			continue; /* reported by every_public_function_has_a_man_page */
		char names[64][64];
		int n = name_line(pg, names, 64);
		bool named = false;
		for (int k = 0; k < n; k++)
			named |= !strcmp(names[k], funcs[i].name);
		if (!named)
			problem("man/%s: NAME does not list %s", pg->file, funcs[i].name);
		for (size_t s = 0; s < sizeof(sections) / sizeof(sections[0]); s++) {
			char *sec = section(pg, sections[s]);
			if (!sec)
				problem("man/%s: no .SH %s", pg->file, sections[s]);
			free(sec);
		}
		char *ctx = section(pg, "CONTEXT");
		if (ctx) {
			if (!strstr(ctx, "Thread:") || !strstr(ctx, "Suspends:"))
				problem("man/%s: CONTEXT must say Thread: and Suspends:", pg->file);
			/* A page for several calls whose contexts differ names each of them. */
			const char *first = strstr(ctx, "Thread:");
			bool one_context = first && !strstr(first + 1, "Thread:");
			if (n > 1 && !one_context && !has_word(ctx, funcs[i].name))
				problem("man/%s: CONTEXT does not say which threads may call %s",
				        pg->file, funcs[i].name);
		}
		free(ctx);
	}
	cr_assert_eq(problems, 0, "%d problems with man page sections (see stderr)", problems);
}

Test(reference, each_synopsis_shows_the_prototype_the_header_declares)
{
	load();
	for (int i = 0; i < nfuncs; i++) {
		struct page *pg = page_of(funcs[i].name);
		if (!pg)
			continue;
		char *syn = section(pg, "SYNOPSIS");
		if (!syn)
			continue;
		normalise(syn);
		if (!strstr(syn, funcs[i].proto))
			problem("man/%s: SYNOPSIS lacks the prototype of %s as %s declares it:\n"
			        "    %s\n  synopsis reads:\n    %s",
			        pg->file, funcs[i].name, funcs[i].header, funcs[i].proto, syn);
		/* The module header that declares it, not only the umbrella rotor.h. */
		char inc[600];
		snprintf(inc, sizeof(inc), "#include <%s>", funcs[i].header + strlen("include/"));
		if (!strstr(syn, inc))
			problem("man/%s: SYNOPSIS does not show %s, where %s is declared", pg->file,
			        inc, funcs[i].name);
		free(syn);
	}
	cr_assert_eq(problems, 0, "%d synopses disagree with the headers (see stderr)", problems);
}

Test(reference, each_page_explains_every_errno_its_header_comment_names)
{
	load();
	for (int i = 0; i < nfuncs; i++) {
		struct page *pg = page_of(funcs[i].name);
		if (!pg)
			continue;
		/* Returned errnos belong in ERRORS; a comment may also name one the call causes
		 * elsewhere ("its waits return -ECANCELED"), which the page must explain too. */
		static const char *const where[] = {"ERRORS", "RETURN VALUE", "DESCRIPTION",
		                                    "NOTES"};
		char *secs[4];
		for (int s = 0; s < 4; s++)
			secs[s] = section(pg, where[s]);
		for (const char *p = funcs[i].comment; (p = strstr(p, "-E"));) {
			char code[32];
			size_t len = 1;
			while (isupper((unsigned char)p[len]) && len < sizeof(code) - 1)
				len++;
			memcpy(code, p, len);
			code[len] = 0;
			p += len;
			if (len < 3)
				continue;
			bool found = false;
			for (int s = 0; s < 4 && !found; s++)
				found = secs[s] && has_word(secs[s], code + 1);
			if (!found)
				problem("man/%s: %s, which the comment on %s in %s names, is in "
				        "none of ERRORS, RETURN VALUE, DESCRIPTION",
				        pg->file, code, funcs[i].name, funcs[i].header);
		}
		for (int s = 0; s < 4; s++)
			free(secs[s]);
	}
	cr_assert_eq(problems, 0, "%d errnos the pages do not explain (see stderr)", problems);
}

Test(reference, no_page_documents_a_function_no_header_declares)
{
	load();
	for (int i = 0; i < npages; i++) {
		struct page *pg = &pages[i];
		if (!pg->text) {
			if (!find_page(pg->target))
				problem("man/%s: .so to man3/%s, which does not exist", pg->file,
				        pg->target);
			continue;
		}
		char names[64][64];
		int n = name_line(pg, names, 64);
		if (n == 0)
			problem("man/%s: no NAME line", pg->file);
		for (int k = 0; k < n; k++) {
			bool declared = false;
			for (int j = 0; j < nfuncs && !declared; j++)
				declared = !strcmp(funcs[j].name, names[k]);
			if (!declared)
				problem(
				    "man/%s documents %s, which no header under include/ declares",
				    pg->file, names[k]);
		}
	}
	cr_assert_eq(problems, 0, "%d stale man pages (see stderr)", problems);
}

Test(reference, the_docs_index_links_every_function)
{
	load();
	char *index = slurp(ROTOR_SOURCE_DIR "/docs/README.md");
	cr_assert_not_null(index, "no docs/README.md");
	for (int i = 0; i < nfuncs; i++)
		if (!has_word(index, funcs[i].name))
			problem("docs/README.md does not list %s", funcs[i].name);
	free(index);
	cr_assert_eq(problems, 0, "%d functions missing from the docs index (see stderr)",
	             problems);
}
