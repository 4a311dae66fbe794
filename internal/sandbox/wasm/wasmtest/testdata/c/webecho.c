// webecho: the web action fixture. With a top-level "result" parameter it
// prints that value verbatim, so a test binds any result it wants to check
// (a .http response with statusCode/headers/body, an {"error": ...}, a bare
// string for a developer error). Without one it echoes its whole input as
// the body of a .http response:
//
//	{"statusCode":200,"headers":{"content-type":"application/json"},"body":<params>}
//
// so a test sees exactly what the platform passed (__ow_method, __ow_headers,
// __ow_path, __ow_query, __ow_body, __ow_user, merged parameters).
#include "gust.h"

static const char *skip_ws(const char *p) {
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
	return p;
}

// skip_string returns the byte after the string that starts at p (a quote).
static const char *skip_string(const char *p) {
	p++;
	while (*p && *p != '"') {
		if (*p == '\\' && p[1]) p++;
		p++;
	}
	return *p ? p + 1 : p;
}

// skip_value returns the byte after the JSON value that starts at p.
static const char *skip_value(const char *p) {
	p = skip_ws(p);
	if (*p == '"') return skip_string(p);
	if (*p == '{' || *p == '[') {
		int depth = 0;
		while (*p) {
			if (*p == '"') {
				p = skip_string(p);
				continue;
			}
			if (*p == '{' || *p == '[') depth++;
			if (*p == '}' || *p == ']') {
				if (--depth == 0) return p + 1;
			}
			p++;
		}
		return p;
	}
	while (*p && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n') p++;
	return p;
}

// member finds the top-level member key of the object in json; it returns
// the start of its value and sets *end past it, or returns NULL.
static const char *member(const char *json, const char *key, const char **end) {
	const char *p = skip_ws(json);
	if (*p != '{') return NULL;
	p++;
	for (;;) {
		p = skip_ws(p);
		if (*p != '"') return NULL;
		const char *k = p + 1;
		const char *ke = skip_string(p);
		size_t klen = (size_t)(ke - 1 - k);
		p = skip_ws(ke);
		if (*p != ':') return NULL;
		const char *v = skip_ws(p + 1);
		const char *ve = skip_value(v);
		if (klen == strlen(key) && strncmp(k, key, klen) == 0) {
			*end = ve;
			return v;
		}
		p = skip_ws(ve);
		if (*p != ',') return NULL;
		p++;
	}
}

int main(void) {
	char *in = read_stdin();
	if (!in) return 1;
	const char *end;
	const char *v = member(in, "result", &end);
	if (v) {
		fwrite(v, 1, (size_t)(end - v), stdout);
		putchar('\n');
		return 0;
	}
	const char *body = skip_ws(in);
	if (!*body) body = "{}";
	printf("{\"statusCode\":200,\"headers\":{\"content-type\":\"application/json\"},\"body\":%s}\n", body);
	return 0;
}
