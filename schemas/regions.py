"""Names of the administrative divisions (行政区划, GB/T 2260) the platform serves, so pages show names, never codes."""

from __future__ import annotations

REGION_NAMES: dict[str, str] = {
    "420000": "湖北省",
    "420100": "武汉市",
    "420102": "江岸区",
    "420103": "江汉区",
    "420104": "硚口区",
    "420105": "汉阳区",
    "420106": "武昌区",
    "420107": "青山区",
    "420111": "洪山区",
    "420112": "东西湖区",
    "420113": "汉南区",
    "420114": "蔡甸区",
    "420115": "江夏区",
    "420116": "黄陂区",
    "420117": "新洲区",
    "420500": "宜昌市",
    "420502": "西陵区",
    "420503": "伍家岗区",
    "420504": "点军区",
    "420505": "猇亭区",
    "420506": "夷陵区",
    "420525": "远安县",
    "420526": "兴山县",
    "420527": "秭归县",
    "420528": "长阳土家族自治县",
    "420529": "五峰土家族自治县",
    "420581": "宜都市",
    "420582": "当阳市",
    "420583": "枝江市",
}


def region_name(code: str | None) -> str:
    """The division's name; a code we hold no name for reads as the name of its city, else as 其他地区."""
    if not code:
        return "未登记地区"
    if code in REGION_NAMES:
        return REGION_NAMES[code]
    city = REGION_NAMES.get(code[:4] + "00")
    return f"{city}其他地区" if city else "其他地区"
