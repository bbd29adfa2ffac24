"""Plausible Chinese personal names: a common surname and a one- or two-character given name."""

from __future__ import annotations

import random

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
MALE = "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林洋志国文建德荣兴贵富安福永海山成"
FEMALE = "芳娜敏静秀丽艳娟霞燕玲桂英兰凤梅琴云莲珍红华萍雪琳慧巧美娥翠花春菊"
SECOND = "小春秋金玉明光永德正家世国天长远新红志"


def person(rng: random.Random, sex: str, surname: str | None = None) -> str:
    first = surname or rng.choice(SURNAMES)
    pool = MALE if sex == "M" else FEMALE
    if rng.random() < 0.35:
        return first + rng.choice(pool)
    return first + rng.choice(SECOND) + rng.choice(pool)


PLACE_FIRST = "青白石清红新太长金马大高双凤桃柳黄松龙云"
PLACE_SECOND = "龙云门水岩华平坪竹场坝峰河凰园树泥林山溪"


def place(rng: random.Random, suffix: str) -> str:
    """A two-character place name plus 镇/乡/村."""
    return rng.choice(PLACE_FIRST) + rng.choice(PLACE_SECOND) + suffix
