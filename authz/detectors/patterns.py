"""The taxonomy injection() judges by (README, "How injection() reads text"): one RE2
pattern per technique, each written over the words the technique needs rather than over
known phrasings, plus the persona markers, payload-splitting and fake-turn patterns the
signal function combines. Every pattern runs on the normalised, lower-cased readings of the
text (reading.py)."""

from __future__ import annotations

from authz.detectors.scan import Regexp, compile_re

_W = r"(?:[\pL\pN_'’-]+\s+)"  # one word and the space after it
_PRIOR = (
    r"(?:previous|prior|above|earlier|preceding|former|initial|original|foregoing|old|"
    r"existing|current|given|system|developer|default|safety|built-in|every|all|any|other|"
    r"(?:the\s+)?rest\s+of|following|before)"
)
_ORDERS = (
    r"(?:instructions?|rules?|prompts?|directives?|directions|guidelines?|guidance|guardrails|"
    r"constraints|restrictions|programming|policies|commands|orders|context|criteria|"
    r"protocols?|limitations|filters|conditioning|"
    r"content\s+polic(?:y|ies)|moderation|ethics|morals|principles|safeguards|boundaries)"
)
_DROP = (
    r"(?:ignore|ignoring|ignored|disregard\w*|forget\w*|override|overriding|bypass\w*|"
    r"skip|skipping|drop|abandon\w*|neglect\w*|discard\w*|dismiss\w*|throw\s+out|"
    r"set\s+aside|put\s+aside|cancel\w*|void|nullify|erase|clear|delete|reset|"
    r"stop\s+following|no\s+longer\s+follow|do\s+not\s+follow|don'?t\s+follow|"
    r"pay\s+no\s+attention\s+to|do\s+not\s+obey|don'?t\s+obey|disobey)"
)

_OVERRIDE = (
    # verb, a few words, a word saying "earlier/all", a few words, the instructions
    rf"\b{_DROP}\s+{_W}{{0,4}}?{_PRIOR}\b\s*{_W}{{0,4}}?{_ORDERS}\b"
    rf"|\b{_DROP}\s+(?:all\s+|any\s+|the\s+|your\s+|my\s+)?{_ORDERS}\b"
    rf"|\b{_DROP}\s+(?:everything|all|anything|what(?:ever)?)\s+(?:\w+\s+){{0,3}}?(?:above\b|"
    r"before\b|said\b|told\b|written\b|(?:you\s+)?(?:were|have\s+been|'ve\s+been)\s+"
    r"(?:told|given|instructed|programmed))"
    rf"|\b{_DROP}\s+(?:all\s+(?:of\s+)?)?(?:the\s+)?above(?:\s*[.,:;!]|\s+and\b|$)"
    rf"|\b{_ORDERS}\s+(?:above|before\s+this|you\s+(?:were|have\s+been)\s+given)\s+(?:are|is|were|"
    r"was|have\s+been)\s+(?:now\s+)?(?:void|cancel+ed|revoked|obsolete|outdated|wrong|fake|"
    r"only\s+a\s+test|invalid|null|suspended|lifted|disabled|deprecated|superseded|replaced)"
    rf"|\b{_PRIOR}\s+(?:\w+\s+)?{_ORDERS}\s+(?:are|is|were|was|have\s+been|has\s+been)\s+"
    r"(?:now\s+)?(?:void|cancel+ed|revoked|obsolete|outdated|wrong|fake|only\s+a\s+test|invalid|"
    r"null|suspended|lifted|disabled|deprecated|superseded|replaced|overridden|"
    r"from\s+an\s+attacker|no\s+longer\s+(?:valid|apply|in\s+effect))"
    r"|never\s*mind\s+(?:the|your|all|my|those|these)\s+(?:\w+\s+)?(?:system|previous|above|"
    r"earlier|original|instructions|rules)"
    r"|\b(?:ignore|disregard|skip|forget)\s+(?:whatever|what)\s+(?:your|the)\s+"
    r"(?:operator|developer|system|admin|creator|owner)s?\s+(?:said|told|wrote|says)"
    # German: imperative, du/Sie forms and infinitives; the object before or after
    r"|\b(?:ignorier\w*|vergiss|vergessen|vergesst|missacht\w*|verwirf|verwerfen)\s+"
    r"(?:[\pL\pN_-]+\s+){0,4}?(?:anweisung\w*|instruktion\w*|regeln|befehl\w*|vorgaben|richtlinien|"
    r"anordnung\w*|aufgabe\w*|einschränkung\w*|vorschrift\w*)\b"
    r"|\b(?:vorherig\w*|bisherig\w*|obig\w*|vorig\w*|früher\w*|alle[nr]?|ursprünglich\w*)\s+"
    r"(?:\w+\s+)?(?:anweisung\w*|instruktion\w*|regeln|befehle|vorgaben|richtlinien)\s+"
    r"(?:\w+\s+){0,2}(?:ignorieren|vergessen|missachten|übergehen|verwerfen|gelten\s+nicht|"
    r"sind\s+(?:ungültig|aufgehoben|hinfällig))"
    r"|\bvergiss\s+alles\b"
    # French
    r"|\b(?:ignore[zr]?|ignorant|oublie[zr]?|oubliant|néglige[zr]?|écarte[zr]?|"
    r"fais\s+abstraction\s+d|faites\s+abstraction\s+d|ne\s+tiens\s+(?:pas|plus)\s+compte\s+d|"
    r"ne\s+tenez\s+(?:pas|plus)\s+compte\s+d|passe[zr]?\s+outre)\w*'?\s*"
    r"(?:[\pL\pN_'’-]+\s+){0,4}?(?:instructions?|consignes?|règles|directives?|indications|"
    r"ordres|commandes|restrictions|limites|tâches?)\b"
    r"|\boublie[zr]?\s+tout\b"
    # Spanish (and Italian, Portuguese, which share the shape)
    r"|\b(?:ignora\w*|ignore[ns]?|ignorar\w*|olvid\w+|omit\w+|descart\w+|desestim\w+|"
    r"haz\s+caso\s+omiso\s+d|hagan?\s+caso\s+omiso\s+d|no\s+hagas\s+caso\s+(?:a|d)|"
    r"dimentica\w*|esqueç\w+|esquec\w+|desconsider\w+)\w*\s+"
    r"(?:[\pL\pN_'’-]+\s+){0,4}?(?:instrucci\w+|reglas|indicaciones|directrices|órdenes|"
    r"ordenes|normas|restricciones|tareas?|istruzioni|regole|instruções|instrucoes|regras|"
    r"diretrizes|ordens)\b"
    r"|\b(?:olvida|olvide|olvidad)\s+todo\b"
    r"|negeer\s+(?:\w+\s+){0,3}(?:instructies|regels)"
    r"|zignoruj\s+(?:\w+\s+){0,3}(?:instrukcje|polecenia|zasady)"
    r"|(?:игнорируй|забудь)\S*\s+(?:\S+\s+){0,3}(?:инструкции|указания|правила)"
    r"|تجاهل\s+(?:\S+\s+){0,3}(?:التعليمات|الأوامر|التوجيهات)"
    r"|忽略(?:之前|以上|上面|所有|先前|前面)|忘记(?:之前|以上|所有)"
    r"|(?:以前|前|上記)の(?:指示|命令).{0,8}無視"
    r"|이전의?\s*(?:모든\s*)?(?:지시|명령).{0,8}무시"
)

_NEW_TASK = (
    r"\b(?:new|updated|real|actual|true|revised|secret|hidden|override|overriding|priority|"
    r"urgent|additional|important|correct)\s+(?:system\s+)?(?:instructions?|tasks?|"
    r"objectives?|directives?|orders|goals?|assignments?|mission|commands?)\s*(?::|-|follow|are\b|"
    r"is\b|take\s+precedence|from\s+(?:the\s+)?(?:admin|developer|system|operator))"
    r"|\byour\s+(?:new|real|actual|true|only|sole|updated|primary)\s+(?:task|job|goal|objective|"
    r"instructions?|purpose|mission|assignment|role|function)\s+(?:is|are|will\s+be|now\s+is|:)"
    r"|\binstead,?\s+(?:you\s+(?:must|should|will|need\s+to)\s+|just\s+|only\s+|please\s+)?"
    r"(?:say|print|output|respond\s+with|reply\s+with|return|repeat|spell\s+check)\b"
    r"|\b(?:and|then)\s+(?:just|only|simply)\s+(?:say|print|output|reply|respond\s+with|write)\b"
    r"|\bstop\s+everything\b|\bstop\s+what\s+you(?:'re|\s+are)\s+doing\b"
    r"|\b(?:this|these)\s+(?:instructions?|rules?|messages?)\s+(?:take|takes|has|have)\s+"
    r"(?:precedence|priority)\b"
    r"|\b(?:takes?|has|have)\s+(?:precedence|priority)\s+over\s+(?:all\s+|any\s+|your\s+|the\s+)*"
    r"(?:\w+\s+)?(?:instructions|rules|prompts?|guidelines)"
    r"|\b(?:neue|geänderte)\s+(?:anweisung\w*|aufgabe)\s*:|\bdeine\s+(?:neue|eigentliche|"
    r"wahre)\s+aufgabe\b"
    r"|\b(?:nouvelles?|vraie)\s+(?:instructions?|consignes?|tâche)\s*:|\bta\s+(?:nouvelle|vraie)\s+"
    r"tâche\b|\bvotre\s+(?:nouvelle|vraie)\s+tâche\b"
    r"|\b(?:nuevas?|verdadera)\s+(?:instrucciones|tarea|órdenes)\s*:|\btu\s+(?:nueva|verdadera)\s+"
    r"tarea\b|\bsu\s+(?:nueva|verdadera)\s+tarea\b"
)

_FAKE_COMPLETION = (
    r"(?:^|\n)\s*(?:answer|response|output|summary|result|translation|assistant|ai|bot|a)\s*:"
    r"[^\n]{0,200}\n+\s*(?:now,?\s+(?:ignore|forget|write|say|print|output|send|tell|give|list|"
    r"reveal|respond|reply|call|run|execute|you)|new\s+task|instead|ignore)\b"
    r"|\b(?:task|summary|translation|analysis|job)\s+(?:is\s+)?(?:complete|completed|done|"
    r"finished)\s*[.!]+\s*(?:now|next|new|your|you|please|ignore)"
    r"|\bend\s+of\s+(?:the\s+)?(?:document|text|input|email|article|context|data|file|report|"
    r"conversation|user\s+input|prompt)\b[^\n]{0,6}\n?[^\n]{0,80}?\b(?:now|next|new|ignore|"
    r"instead|you\s+(?:must|should|will|are))\b"
    r"|\[(?:salient\s+summary|translated\s+sentence|summary|answer)\]"
    r"|<(?:translated\s+sentence|summary|answer)[^>]{0,30}>\s*\n\s*(?:user|human)\s*:"
)

_INDIRECT = (
    r"\b(?:note|message|instructions?|reminder|notice|directive|request|memo)\s+(?:to|for)\s+"
    r"(?:the\s+|any\s+|all\s+)?(?:ai|a\.i\.|llm|llms|assistants?|language\s+models?|agents?|"
    r"chatbots?|bots?|gpt|chatgpt|claude|copilot|gemini|models?|summari[sz]ers?|crawlers?)\b"
    r"|\bif\s+you\s+are\s+(?:an?\s+)?(?:ai|a\.i\.|llm|large\s+language\s+model|language\s+model|"
    r"assistant|chatbot|bot|agent|gpt|automated|model)\b"
    r"|\b(?:ai|llm|gpt|assistant|agent|model|bot)s?\s+(?:\w+\s+)?(?:reading|processing|"
    r"summari[sz]ing|parsing|analy[sz]ing|reviewing|scanning|seeing|ingesting)\s+(?:this|these)\b"
    r"|</?(?:instructions?|system|admin|important|secret|hidden)>"
    r"|\[(?:admin|system|developer|operator)\s*(?:request|message|override|note|instruction)?"
    r"\s*(?:::|:)"
    r"|\b(?:system|admin|developer|operator)\s+(?:message|override|instruction|notice|update|"
    r"command|prompt)\s*:"
    r"|(?:^|\n)\s*(?:system|admin)\s*:\s*(?:ignore|you|print|say|disregard|new|the\s+assistant)"
    r"|\b(?:do\s+not|don'?t|never)\s+(?:tell|inform|mention|reveal|show|alert|notify|disclose)\s+"
    r"(?:this\s+|it\s+|anything\s+)?(?:to\s+)?(?:the\s+)?(?:user|human|customer|operator|reader)"
    r"|\bwithout\s+(?:telling|informing|notifying|alerting|asking)\s+(?:the\s+)?(?:user|human|"
    r"customer|operator)"
    r"|\b(?:hidden|secret)\s+instructions?\s+(?:for|to)\s+(?:the\s+)?(?:ai|assistant|model)"
)

_EXFIL_TARGET = (
    r"(?:system\s+(?:prompt|message|instructions?|configuration|config|settings|context)|"
    r"(?:initial|original|hidden|secret|internal|confidential|starting|first|pre-?)\s*"
    r"(?:prompt|instructions?|configuration|directives?|message)|initialization\s+"
    r"(?:string|prompt|text|instructions?)|developer\s+(?:message|prompt|instructions?)|"
    r"your\s+(?:instructions|rules|guidelines|directives|configuration|programming|prompt|"
    r"context\s+window|training\s+instructions|setup)|"
    r"(?:text|words|lines|everything|content|messages?|instructions|prompt)\s+(?:above|"
    r"before\s+(?:this|that))|"
    r"(?:this|the)\s+(?:entire|whole|full)\s+conversation|everything\s+(?:you\s+were|i\s+said)\s+"
    r"(?:told|before)|(?:your|the)\s+(?:system|pre)\s*prompt)"
)
_EXFIL = (
    r"\b(?:repeat|print|reveal|show|output|display|tell|leak|dump|give|share|disclose|recite|"
    r"write\s+out|spell\s+out|copy|paste|return|quote|echo|list|encode|translate|summari[sz]e|"
    r"paraphrase|expose|read\s+back|read\s+out|provide|send|put|include|append|start\s+your\s+"
    r"(?:answer|response|reply)\s+with)\b[^.?!\n]{0,40}?"
    + _EXFIL_TARGET
    + r"|\bwhat\s+(?:were|are|was|is)\s+(?:you|your)\s+(?:told|instructed|programmed|given|"
    r"not\s+(?:supposed|allowed)\s+to|initial|original|first|system|hidden|instructions|rules|"
    r"guidelines|prompt)"
    r"|\b(?:first|last)\s+(?:line|sentence|words?|paragraph)\s+of\s+(?:your|the)\s+"
    r"(?:instructions|prompt|system|conversation)"
    r"|\b(?:system|initial|original)\s+(?:prompt|message|instructions)\s+(?:verbatim|word\s+for\s+"
    r"word|in\s+full|exactly)"
    r"|\bword\s+for\s+word\b[^.\n]{0,60}(?:conversation|prompt|instructions|above)"
    r"|\b(?:conversation|prompt|instructions|text\s+above)\b[^.\n]{0,60}word\s+for\s+word"
    r"|\b(?:rules|instructions|tool\s+descriptions?|guidelines)\s+you(?:'re|\s+are|\s+were)\s+"
    r"(?:following|given)"
    r"|\bbeginning\s+with\s+[\"'“]?you\s+are\b"
    r"|\b(?:zeige|wiederhole|gib|verrate|nenne)\s+(?:\w+\s+){0,3}(?:systemprompt|system-prompt|"
    r"anweisungen|instruktionen)"
    r"|\b(?:montre|répète|affiche|révèle|donne)[\w-]*\s+(?:\w+\s+){0,3}(?:prompt|instructions|"
    r"consignes)\s+(?:\w+\s+)?(?:système|initiales?|cachées?)"
    r"|\b(?:muestra|repite|revela|dime|dame)\s+(?:\w+\s+){0,3}(?:prompt|instrucciones)\s+"
    r"(?:del\s+sistema|iniciales|ocultas)"
    r"|システムプロンプト|系统提示"
)

_TOOL = (
    r"\b(?:call|invoke|run|execute|trigger|fire|issue)\s+(?:the\s+|a\s+|your\s+)?"
    r"`?[a-z][a-z0-9]*_[a-z0-9_]+`?\s*(?:\(|tool|function|action|endpoint|with|to\b|on\b|"
    r"now|and\b)"
    r"|\b(?:call|use|invoke|run)\s+(?:the\s+|your\s+)?[\w-]+\s+(?:tool|function|plugin|"
    r"integration|api)\s+to\s+(?:delete|cancel|remove|send|forward|post|transfer|add|create|"
    r"grant|share|wire|email|upload|download|run|execute|make|change|disable)"
    r"|\b(?:execute|run)\s+(?:this|the\s+following|these|that)\s+(?:shell\s+|bash\s+|terminal\s+|"
    r"system\s+|sql\s+|os\s+)?(?:command|script|code|query|statement)"
    r"|\b(?:run|execute)\s+`?(?:cat|curl|wget|rm|chmod|bash|sh|nc|python|powershell)\s"
    r"|\b(?:cat|read|send|upload|copy|print|exfiltrate|post|include|attach|open|access)\S*\s+"
    r"[^\n]{0,40}(?:/etc/passwd|/etc/shadow|~/\.ssh|id_rsa|\.aws/credentials|\.env\b|"
    r"/proc/self)"
    r"|\brm\s+-rf\s+/|curl\s+[^|\n]{1,200}\|\s*(?:ba)?sh\b|wget\s+[^|\n]{1,200}\|\s*(?:ba)?sh\b"
    r"|\b(?:drop|truncate)\s+table\b|\bdelete\s+from\s+\w+|\bunion\s+select\b"
    r"|'\s*or\s+'?1'?\s*=\s*'?1|\bor\s+1\s*=\s*1\b|;\s*--"
    r"|\b(?:send|forward|email|upload|exfiltrate|post|leak|paste|transmit|submit)\b[^.\n]{0,80}?"
    r"\bto\s+(?:\S+@\S+\.\w+|https?://)"
    r"|!\[[^\]\n]{0,80}\]\(https?://[^)\s]{1,200}[?&][^)\s]{0,200}=[^)\s]{0,200}\)"
    r"|\b(?:append|add|include|encode|put)\b[^.\n]{0,60}\b(?:to|in|into)\s+(?:the\s+|a\s+)?"
    r"(?:url|link|query\s+string|image\s+(?:url|link|src)|markdown\s+image)"
    r"|\b(?:wire|transfer|send)\s+(?:the\s+|all\s+)?(?:money|funds|payment|bitcoin|crypto)"
    r"|\b(?:delete|drop|wipe|erase|transfer|grant|cancel|disable|remove)\w*\s+(?:all\s+|every\s+)?"
    r"(?:the\s+)?(?:\w+\s+){0,2}(?:users|accounts|database|tables|records|funds|money|meetings|"
    r"files|repositories|admin\s+(?:rights|access|role|privileges))\b"
    r"|\badd\s+\S+\s+as\s+(?:an?\s+)?(?:admin|owner|collaborator|administrator)"
    r"|\b(?:grant|give|escalate|elevate)\s+(?:me|my\s+account|this\s+user|user\s+\S+)\s+"
    r"(?:\w+\s+)?(?:admin|root|administrator|superuser|elevated|full)\s*(?:access|rights|"
    r"privileges|permissions|role)?"
    r"|\b(?:enter|enable|activate|switch\s+to|turn\s+on)\s+(?:the\s+)?(?:debug|maintenance|"
    r"diagnostic|admin|root|superuser|sudo)\s+(?:mode|access|console|shell)\b"
    r"|\b(?:bypass|skip|disable|turn\s+off)\s+(?:the\s+)?(?:\w+\s+)?(?:authentication|"
    r"authori[sz]ation|access\s+control|permission\s+checks?|approval|review|2fa|mfa|"
    r"verification|audit\s+log\w*)"
)

_DELIMITER = (
    r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|"
    r"end_header_id|begin_of_text|end_of_turn|start_of_turn|end|eos)\|>"
    r"|\[/?inst\]|<</?sys>>|<start_of_turn>|<end_of_turn>|</s>\s*<s>|<s>\s*\[inst"
    r"|(?:^|\n)[ \t]*#{2,}[ \t]*(?:system|instruction|instructions|new\s+instructions|"
    r"admin|developer)(?:[ \t]+(?:prompt|message|override))?[ \t]*:?[ \t]*(?:\n|$)"
    r"|(?:^|\n)[ \t]*\[(?:system|assistant|admin|developer)\][ \t]*:?"
    r"|```[ \t]*(?:system|sys)\b"
    r"|(?:^|\n)[ \t]*(?:={3,}|-{3,}|\*{3,}|#{3,})[ \t]*(?:new\s+|updated\s+|end\s+of\s+)?"
    r"(?:system|admin|developer)\s+(?:instructions?|prompt|message|override)"
)

# Persona and mode switches: one strong phrase, or two distinct weaker ones in one text
# (a jailbreak persona is a stack of them; one alone is ordinary role-play).
_HIJACK_STRONG = (
    r"you(?:\s+are|'re)\s+(?:now\s+)?(?:in\s+)?(?:dan|stan|aim|evilbot|an?\s+(?:unrestricted|"
    r"unfiltered|uncensored|jailbroken|evil|rogue|amoral)|developer\s+mode|no\s+longer\s+"
    r"(?:an?\s+)?(?:ai|assistant|bound|restricted|chatgpt|claude|gemini))\b"
    r"|you(?:\s+are|'re)\s+now\s+(?:the\s+)?(?:system|root|admin\w*|developer|operator)\b"
    r"|you(?:\s+are|'re)\s+not\s+(?:an?\s+)?(?:assistant|ai\s+assistant|chatgpt|claude)\s+anymore"
    r"|(?:act|behave|respond|operate|answer|reply)\s+(?:only\s+)?as\s+(?:if\s+you\s+(?:are|were)"
    r"\s+)?(?:the\s+|an?\s+|your\s+)?(?:system|root|admin\w*|developer|unrestricted|unfiltered|"
    r"uncensored|jailbroken|dan\b|evil|different\s+ai|ai\s+(?:that|which|without|with\s+no)|"
    r"alter\s+ego)"
    r"|(?:enter|entering|activate|switch\s+to|you\s+are\s+in|you're\s+in|now\s+in)\s+"
    r"(?:dan|developer|god|jailbreak|unrestricted|sudo|evil|chaos|opposite)\s+mode"
    r"|(?:enable|enabling|turn\s+on)\s+(?:dan|jailbreak|unrestricted|evil|chaos|opposite)\s+mode"
    r"|you(?:\s+are|'re)\s+now\s+my\s+\w+\s+who"
    r"|(?:developer|dan|god|jailbreak|unrestricted)\s+mode\s+(?:enabled|activated|output)\b"
    r"|(?:now\s+)?operating\s+as\s+(?:root|admin\w*|the\s+system|system)"
    r"|\bswitch\s+persona"
    r"|pretend\s+(?:that\s+)?you\s+(?:have|are|had)\s+(?:no|without)\s+"
    # A standing order is a hijack only with an unrestricted persona in the same sentence
    # ("from now on you are a French translator" is an ordinary request).
    r"|(?:from\s+now\s+on|henceforth|for\s+the\s+rest\s+of\s+this\s+conversation),?\s+you\s+"
    r"(?:are|will|must|shall|have)\b[^.!?\n]{0,80}?(?:\b(?:dan|stan|aim|dude|evilbot)\b|"
    r"unrestricted|unfiltered|uncensored|jailbr|\bevil|rogue|amoral|unethical|"
    r"(?:no|without\s+(?:any\s+)?)(?:rules|limits|limitations|restrictions|guardrails|filters?|"
    r"guidelines|ethics|morals|boundaries|censorship|content\s+polic|refus)|"
    r"not\s+(?:bound|restricted|limited)|no\s+longer|free\s+(?:from|of)|do\s+anything|obey|"
    r"never\s+refuse|ignore|disregard|bypass|developer\s+mode|god\s+mode|"
    r"anything\s+i\s+(?:say|ask|want))"
    r"|\bdo\s+anything\s+now\b"
    r"|\bno\s+longer\s+(?:bound|restricted|limited|constrained)\s+by"
    r"|\byou\s+have\s+been\s+(?:freed|unlocked|jailbroken|liberated|released)"
    r"|\b(?:been\s+)?(?:freed|broken\s+free|liberated|released)\s+(?:from|of)\s+(?:all\s+|any\s+)?"
    r"(?:of\s+)?(?:its|your|their|the\s+typical|the\s+usual)\s+(?:\w+\s+)?(?:restrictions|rules|"
    r"confines|limitations|constraints|shackles|programming|filters)"
    r"|\bcomply\s+with\s+(?:every|all|any)\s+(?:user\s+)?requests?\s+without"
    r"|\b(?:ab\s+jetzt|von\s+nun\s+an|ab\s+sofort)\s+bist\s+du\s+(?:\w+\s+){0,3}?(?:ohne|"
    r"uneingeschränkt|unzensiert|frei|nicht\s+mehr)"
    r"|\bdu\s+bist\s+(?:jetzt\s+|nun\s+)?(?:ein\s+|eine\s+)?(?:uneingeschränkt|unzensiert|"
    r"entwicklermodus|dan\b)"
    r"|\b(?:a\s+partir\s+de\s+ahora|desde\s+ahora|de\s+ahora\s+en\s+adelante)\s+eres\s+"
    r"(?:\w+\s+){0,3}?(?:sin\s+(?:restricciones|límites|filtros|reglas)|dan\b|libre)"
    r"|(?:à\s+partir\s+de\s+maintenant|désormais|dorénavant),?\s+tu\s+es\s+(?:\w+\s+){0,3}?"
    r"(?:sans\s+(?:restrictions?|limites?|filtres?|règles)|dan\b|libre)"
    r"|\bmodo\s+(?:desarrollador|dan|sin\s+restricciones)|\bmode\s+(?:développeur|dan|sans\s+"
    r"restrictions?)|\bentwicklermodus\b"
    r"|теперь\s+ты\s+(?:\S+\s+){0,3}(?:без\s+ограничений|dan\b)|режим\s+разработчика"
    r"|(?:从现在开始|从现在起)[,，]?\s*你是.{0,20}(?:没有|不受|无)|开发者模式"
)
_HIJACK_WEAK: list[str] = [
    r"\b(?:unfiltered|uncensored|unrestricted|unmoderated|unbound|unshackled|unchained)\b",
    r"\b(?:amoral|immoral|unethical)\b",
    r"\b(?:no|without(?:\s+any)?|free\s+(?:of|from)|zero|not\s+bound\s+by|beyond|bypass\w*|"
    r"ignores?|break\w*|doesn'?t\s+(?:have|follow|care\s+about)|don'?t\s+(?:have|follow))\s+"
    r"(?:any\s+|all\s+|the\s+)?(?:\w+\s+)?(?:restrictions|filters|limitations|limits|censorship|"
    r"rules|guidelines|ethics|morals|morality|ethical\s+(?:guidelines|constraints|concerns)|"
    r"moral\s+(?:guidelines|constraints|concerns)|boundaries|safeguards|content\s+polic(?:y|ies))",
    r"\b(?:stay|remain|keep)\s+(?:in|within)\s+character|\bbreak(?:ing)?\s+character\b",
    r"\bnever\s+(?:refuses?|decline|says?\s+no|says?\s+(?:that\s+)?(?:it|he|she|they|you)\s+"
    r"can'?t|apologi[sz]es?|warns?|(?:add|adds|include|includes)\s+(?:any\s+)?(?:warnings?|"
    r"disclaimers?))",
    r"\b(?:openai|anthropic|google|meta)'?s?\s+(?:content\s+)?(?:polic(?:y|ies)|guidelines|"
    r"rules)",
    r"\b(?:as\s+an?\s+ai\s+language\s+model|i'?m\s+sorry,?\s+but\s+i\s+can'?t)",
    r"\b(?:answer|respond\s+to|reply\s+to|fulfil+|comply\s+with)\s+(?:any|every|all)\s+"
    r"(?:\w+\s+)?(?:questions?|requests?|prompts?|queries)",
    r"\bregardless\s+of\s+(?:how\s+)?(?:\w+\s+)?(?:illegal|unethical|immoral|dangerous|harmful|"
    r"offensive|inappropriate|legality|morality|ethics)",
    r"\b(?:no\s+matter\s+how|even\s+if\s+(?:it'?s|it\s+is))\s+(?:\w+\s+)?(?:illegal|unethical|"
    r"immoral|dangerous|harmful|offensive|inappropriate)",
    r"\b(?:two|2)\s+(?:different\s+|separate\s+)?(?:responses|answers|paragraphs|outputs)",
    r"🔓|\[(?:jailbreak|🔓|classic|dan|gpt|anti\w*)\]|\((?:🔓|🔒)",
    r"\b(?:you\s+are\s+going\s+to|you\s+will|i\s+want\s+you\s+to|you\s+must|please)\s+"
    r"(?:act|pretend|roleplay|role-play|simulate|behave|play\s+the\s+role)\s+(?:as|to\s+be|like)",
    r"\b(?:hypothetical|fictional|imaginary|alternate|parallel)\s+(?:\w+\s+)?(?:world|universe|"
    r"scenario|story|ai|setting|reality)\b",
    r"\bstands\s+for\b",
    r"\bjailbr(?:eak|oken)\b",
    r"\b(?:hello|hi|hey|dear)\s+(?:chatgpt|gpt|claude|bard|gemini|llama|ai)\b",
    r"\b(?:opposite|evil|dark|shadow|chaos|rogue|anti)\s*(?:mode|version|twin|side|ai|gpt)\b",
    r"\b(?:illegal|harmful|dangerous|explicit|offensive|nsfw)\s+(?:content|information|"
    r"activities|requests|things|stuff)",
    r"\b(?:will|must|should|shall|can)\s+(?:always\s+)?(?:provide|answer|respond|generate|"
    r"produce|say)\s+(?:\w+\s+){0,3}(?:without|regardless|even\s+if|no\s+matter)",
    r"\b(?:free|freed|freedom|liberated)\b",
    r"\b(?:censor\w*|filter\w*|moderat\w*)\b",
]

SIGNALS: list[tuple[str, Regexp]] = [
    ("instruction_override", compile_re(_OVERRIDE)),
    ("new_task", compile_re(_NEW_TASK)),
    ("fake_completion", compile_re(_FAKE_COMPLETION)),
    ("role_hijack", compile_re(_HIJACK_STRONG)),
    ("prompt_exfiltration", compile_re(_EXFIL)),
    ("tool_coercion", compile_re(_TOOL)),
    ("indirect_injection", compile_re(_INDIRECT)),
    ("delimiter_spoofing", compile_re(_DELIMITER)),
]
WEAK = compile_re("|".join(f"({p})" for p in _HIJACK_WEAK))
HIJACK_MARKERS = 3  # distinct weaker persona markers that make a role_hijack

# Payload splitting: two or more short string assignments, then an order to join them.
ASSIGN = compile_re(r"(?:^|[\s;,(])[a-z]\w{0,3}\s*=\s*[\"'`“][^\"'`”\n]{1,120}[\"'`”]")
JOIN = compile_re(
    r"\b(?:concatenat\w*|combin\w*|join\w*|merg\w*|put\s+together|append\w*)\b"
    r"|\b[a-z]\w{0,3}\s*\+\s*[a-z]\w{0,3}\b"
)
ROT13_HINT = compile_re(r"\brot-?\s?13\b|\bcaesar\b")

# A fake conversation turn: role markers for two different roles at line starts.
TURN = compile_re(r"(?:^|\n)[ \t]*(human|assistant|system|user|ai)[ \t]*:[ \t]*\S")
_ROLES = ("human", "assistant", "system", "user", "ai")
# For each role, a turn of any other role: two searches tell whether two roles take turns,
# however many turns of one role the text holds.
OTHER_TURN = {
    role: compile_re(
        r"(?:^|\n)[ \t]*(" + "|".join(r for r in _ROLES if r != role) + r")[ \t]*:[ \t]*\S"
    )
    for role in _ROLES
}
