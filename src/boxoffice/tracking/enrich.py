"""What the processor adds to an event: browser, OS and device from its User-Agent, and whether a bot sent it.

The User-Agent is read by ``ua-parser`` (uap-core's rules, matched by its Rust accelerator) and cached per
string: a site's traffic comes from a few thousand distinct agents. A bot is an agent uap-core files as a
spider, one matching the crawler patterns below, or a session faster than a person (``domain.RateWatch``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import ua_parser

CRAWLERS = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|scrap|fetch|archiver|facebookexternalhit|headless|phantomjs|"
    r"python-requests|python-httpx|curl/|wget/|go-http-client|java/|okhttp|lighthouse|pingdom|uptime",
    re.IGNORECASE,
)
_TABLETS = re.compile(r"ipad|tablet|kindle|silk/|playbook|(android(?!.*mobile))", re.IGNORECASE)
_MOBILES = re.compile(r"mobi|iphone|ipod|android.*mobile|windows phone|blackberry|opera mini", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Agent:
    browser: str
    browser_version: str
    os: str
    device: str  # desktop | mobile | tablet | bot | unknown
    is_bot: bool


@functools.lru_cache(maxsize=8192)
def parse_agent(user_agent: str) -> Agent:
    if not user_agent:
        return Agent("unknown", "", "unknown", "unknown", False)
    result = ua_parser.parse(user_agent)
    browser = result.user_agent.family if result.user_agent else "Other"
    version = result.user_agent.major or "" if result.user_agent else ""
    os = result.os.family if result.os else "Other"
    spider = result.device is not None and result.device.family == "Spider"
    is_bot = spider or bool(CRAWLERS.search(user_agent))
    if is_bot:
        device = "bot"
    elif _TABLETS.search(user_agent):
        device = "tablet"
    elif _MOBILES.search(user_agent):
        device = "mobile"
    else:
        device = "desktop"
    return Agent(browser[:64], version[:16], os[:64], device, is_bot)
