import { execFileSync } from "node:child_process";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { and, quote, sh, ShellCommand, UnquotableError } from "./quote";

/** Runs `printf '%s' <value>` through a real POSIX shell and returns its exact output bytes. */
function roundTrip(value: string): Buffer {
  const cmd = sh`printf '%s' ${value}`;
  return execFileSync("sh", ["-c", cmd.text]);
}

const HOSTILE: readonly [string, string][] = [
  ["empty string", ""],
  ["a single quote", "'"],
  ["an apostrophe inside a word", "it's"],
  ["only single quotes", "''''"],
  ["a closing quote then code", "'; rm -rf / #"],
  ["double quotes", '"quoted" and "$HOME"'],
  ["a newline", "line one\nline two"],
  ["a trailing newline", "ends with newline\n"],
  ["a carriage return and tab", "a\r\tb"],
  ["command substitution", "$(echo pwned)"],
  ["backticks", "`echo pwned`"],
  ["a variable", "$HOME ${PATH} $1 $@ $$"],
  ["a semicolon", "a; echo pwned"],
  ["&&", "true && echo pwned"],
  ["||, pipes and redirections", "false || echo pwned | cat > /tmp/x < /etc/passwd 2>&1"],
  ["a background ampersand", "sleep 1 &"],
  ["glob characters", "* ? [abc] /etc/*"],
  ["a lone star", "*"],
  ["brace expansion", "{a,b}"],
  ["tilde", "~root"],
  ["a leading dash", "-n"],
  ["a leading double dash", "--help"],
  ["a backslash", "back\\slash \\n \\"],
  ["an exclamation mark", "!!"],
  ["a hash", "#not a comment"],
  ["spaces only", "   "],
  ["parentheses", "(subshell)"],
  ["a heredoc marker", "<<EOF\nEOF"],
  ["an emoji", "😀 deploy 🚀"],
  ["right-to-left text", "\u202Eשלום عربى"],
  ["combining marks", "e\u0301 n\u0303 Z\u0351\u0352\u0353"],
  ["CJK", "漢字かなカナ"],
  ["a zero-width joiner sequence", "👩‍👩‍👧"],
  ["control characters", "\x01\x1b[31mred\x1b[0m\x7f"],
  ["percent signs (printf format)", "%s %d %%"],
  ["the safe set itself", "A-z_0@%+=:,./9"],
  ["an equals sign in front", "=x"],
  ["very long (100 000 characters, with quotes)", "ab'c$d\"e`".repeat(10_000)],
];

describe("quote", () => {
  it("leaves a word made only of safe characters as it is", () => {
    // given
    const values = ["abc", "/etc/motd", "user@host:22", "a=b,c+d%e", "-rf", "0644"];

    // when
    const quoted = values.map((v) => quote(v));

    // then
    assert.deepEqual(quoted, values);
  });

  it("wraps anything else in single quotes", () => {
    // given
    const value = "hello world";

    // when
    const quoted = quote(value);

    // then
    assert.equal(quoted, "'hello world'");
  });

  it("quotes the empty string as '' so it stays one (empty) word", () => {
    // given
    const value = "";

    // when
    const quoted = quote(value);

    // then
    assert.equal(quoted, "''");
  });

  it("closes, escapes and reopens around each single quote", () => {
    // given
    const value = "it's";

    // when
    const quoted = quote(value);

    // then
    assert.equal(quoted, `'it'\\''s'`);
  });

  it("accepts numbers and bigints", () => {
    // given
    const values = [42, -1, 0o644, 12345678901234567890n];

    // when
    const quoted = values.map((v) => quote(v));

    // then
    assert.deepEqual(quoted, ["42", "-1", "420", "12345678901234567890"]);
  });

  it("refuses a NUL byte with UnquotableError that says how to fix it", () => {
    // given
    const values = ["\0", "a\0b", "trailing\0"];

    for (const value of values) {
      // when / then
      assert.throws(
        () => quote(value),
        (err: unknown) => {
          assert.ok(err instanceof UnquotableError, "an UnquotableError");
          assert.match(err.message, /NUL byte/);
          assert.match(err.message, /Remove the NUL byte/);
          return true;
        },
      );
    }
  });

  for (const [name, value] of HOSTILE) {
    it(`round-trips ${name} through /bin/sh byte for byte`, () => {
      // given
      const expected = Buffer.from(value, "utf8");

      // when
      const out = roundTrip(value);

      // then
      assert.ok(out.equals(expected), `expected ${JSON.stringify(value.slice(0, 80))}, got ${JSON.stringify(out.toString("utf8").slice(0, 80))}`);
    });
  }

  it("keeps each hostile value a single shell word", () => {
    // given
    const values = HOSTILE.map(([, v]) => v).filter((v) => v.length < 1000);

    for (const value of values) {
      // when: the shell counts the words it was given
      const out = execFileSync("sh", ["-c", sh`set -- ${value}; printf '%s' "$#"`.text]).toString();

      // then
      assert.equal(out, "1", `${JSON.stringify(value)} split into ${out} words`);
    }
  });

  it("round-trips arbitrary code points without NUL through /bin/sh (property)", () => {
    // given
    const anyText = fc.string({ unit: "binary", maxLength: 200 }).filter((s) => !s.includes("\0"));

    // when / then
    fc.assert(
      fc.property(anyText, (value) => {
        assert.ok(roundTrip(value).equals(Buffer.from(value, "utf8")), JSON.stringify(value));
      }),
      { numRuns: 200 },
    );
  });

  it("round-trips arbitrary graphemes through /bin/sh (property)", () => {
    // given
    const anyText = fc.string({ unit: "grapheme", maxLength: 50 }).filter((s) => !s.includes("\0"));

    // when / then
    fc.assert(
      fc.property(anyText, (value) => {
        assert.ok(roundTrip(value).equals(Buffer.from(value, "utf8")), JSON.stringify(value));
      }),
      { numRuns: 200 },
    );
  });

  it("throws for any string that contains a NUL byte (property)", () => {
    // given
    const withNul = fc
      .tuple(fc.string({ unit: "binary", maxLength: 20 }), fc.string({ unit: "binary", maxLength: 20 }))
      .map(([a, b]) => `${a}\0${b}`);

    // when / then
    fc.assert(
      fc.property(withNul, (value) => {
        assert.throws(() => quote(value), UnquotableError);
      }),
      { numRuns: 200 },
    );
  });
});

describe("sh", () => {
  it("keeps literal template text and quotes each interpolated value", () => {
    // given
    const path = "/tmp/my file";
    const mode = "0644";

    // when
    const cmd = sh`chmod ${mode} ${path}`;

    // then
    assert.ok(cmd instanceof ShellCommand);
    assert.equal(cmd.text, "chmod 0644 '/tmp/my file'");
    assert.equal(String(cmd), cmd.text);
  });

  it("expands an array to several quoted words", () => {
    // given
    const files = ["a", "b c", "it's"];

    // when
    const cmd = sh`rm -f ${files}`;

    // then
    assert.equal(cmd.text, `rm -f a 'b c' 'it'\\''s'`);
  });

  it("expands an empty array to nothing", () => {
    // given
    const files: string[] = [];

    // when
    const cmd = sh`ls ${files}`;

    // then
    assert.equal(cmd.text, "ls ");
  });

  it("keeps a nested sh fragment as it is instead of quoting it again", () => {
    // given
    const inner = sh`echo ${"a b"}`;

    // when
    const cmd = sh`if true; then ${inner}; fi`;

    // then
    assert.equal(cmd.text, "if true; then echo 'a b'; fi");
  });

  it("quotes a plain string that looks like shell code, unlike a fragment", () => {
    // given
    const notAFragment = "echo pwned";

    // when
    const cmd = sh`${notAFragment}`;

    // then
    assert.equal(cmd.text, "'echo pwned'");
  });

  it("renders a template with no values as its literal text", () => {
    // given / when
    const cmd = sh`true`;

    // then
    assert.equal(cmd.text, "true");
  });

  it("passes every hostile value of an array as its own argument", () => {
    // given
    const values = ["$(id)", "a b", "'", "", "-n", "😀"];

    // when
    const out = execFileSync("sh", ["-c", sh`printf '[%s]' ${values}`.text]).toString("utf8");

    // then
    assert.equal(out, "[$(id)][a b]['][][-n][😀]");
  });

  it("throws UnquotableError when an interpolated value holds a NUL byte", () => {
    // given
    const value = "a\0b";

    // when / then
    assert.throws(() => sh`cat ${value}`, UnquotableError);
    assert.throws(() => sh`cat ${["ok", value]}`, UnquotableError);
  });
});

describe("and", () => {
  it("joins commands with && so the first failure stops the rest", () => {
    // given
    const a = sh`false`;
    const b = sh`echo ${"should not run"}`;

    // when
    const cmd = and(a, b);

    // then
    assert.equal(cmd.text, "false && echo 'should not run'");
    assert.throws(() => execFileSync("sh", ["-c", cmd.text], { stdio: "pipe" }));
  });

  it("runs every command when all succeed", () => {
    // given
    const cmd = and(sh`printf ${"a"}`, sh`printf ${"b c"}`);

    // when
    const out = execFileSync("sh", ["-c", cmd.text]).toString();

    // then
    assert.equal(out, "ab c");
  });
});
