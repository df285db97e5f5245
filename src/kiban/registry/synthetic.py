"""A synthetic population: fictional but realistic residents for demos, tests and benchmarks.

Deterministic for a seed and an "as of" date. Names are common Japanese family and given names
(given names by birth cohort) with their katakana readings; households are singles, couples,
families, single parents, three generations and elderly people living alone, in proportions
like Japan's census; ages follow Japan's ageing pyramid; about 2% are foreign residents with
nationality, 在留資格 and card number. 住民票コード and 個人番号 carry valid check digits. A few
removed records (除票: deaths, moves out) are included.

Records come out in the migration format (kiban.registry.migration), so seeding and
benchmarks go through the same import path as a vendor's file. No real person is described:
every combination is drawn at random.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from functools import lru_cache
from itertools import accumulate
from typing import Any, TextIO

from kiban.core.checkdigits import with_check_digit
from kiban.registry.migration import FORMAT, dumps
from kiban.registry.model import HEAD


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    """'漢字:カナ 漢字:カナ' as pairs; '_' stands for a space inside a name."""
    return tuple((a.replace("_", " "), b) for a, b in (p.split(":") for p in text.split()))


# --- names ------------------------------------------------------------------------------------

# Common family names, most frequent first (weights fall with rank), with a few 異体字 forms
# (髙橋, 齋藤, 渡邊) since real registries hold them.
SURNAMES = _pairs(
    "佐藤:サトウ 鈴木:スズキ 高橋:タカハシ 田中:タナカ 伊藤:イトウ 渡辺:ワタナベ 山本:ヤマモト "
    "中村:ナカムラ 小林:コバヤシ 加藤:カトウ 吉田:ヨシダ 山田:ヤマダ 佐々木:ササキ 山口:ヤマグチ "
    "松本:マツモト 井上:イノウエ 木村:キムラ 林:ハヤシ 斎藤:サイトウ 清水:シミズ 山崎:ヤマザキ "
    "森:モリ 池田:イケダ 橋本:ハシモト 阿部:アベ 石川:イシカワ 山下:ヤマシタ 中島:ナカジマ "
    "石井:イシイ 小川:オガワ 前田:マエダ 岡田:オカダ 長谷川:ハセガワ 藤田:フジタ 後藤:ゴトウ "
    "近藤:コンドウ 村上:ムラカミ 遠藤:エンドウ 青木:アオキ 坂本:サカモト 斉藤:サイトウ 福田:フクダ "
    "太田:オオタ 西村:ニシムラ 藤井:フジイ 金子:カネコ 岡本:オカモト 藤原:フジワラ 中野:ナカノ "
    "三浦:ミウラ 原田:ハラダ 中川:ナカガワ 松田:マツダ 竹内:タケウチ 小野:オノ 田村:タムラ "
    "中山:ナカヤマ 和田:ワダ 石田:イシダ 森田:モリタ 上田:ウエダ 原:ハラ 内田:ウチダ 柴田:シバタ "
    "酒井:サカイ 宮崎:ミヤザキ 横山:ヨコヤマ 高木:タカギ 安藤:アンドウ 宮本:ミヤモト 大野:オオノ "
    "小島:コジマ 谷口:タニグチ 今井:イマイ 工藤:クドウ 高田:タカダ 増田:マスダ 丸山:マルヤマ "
    "杉山:スギヤマ 村田:ムラタ 大塚:オオツカ 新井:アライ 小山:コヤマ 平野:ヒラノ 藤本:フジモト "
    "河野:コウノ 上野:ウエノ 野口:ノグチ 武田:タケダ 松井:マツイ 千葉:チバ 岩崎:イワサキ "
    "菅原:スガワラ 木下:キノシタ 久保:クボ 佐野:サノ 野村:ノムラ 松尾:マツオ 市川:イチカワ "
    "菊地:キクチ 杉本:スギモト 古川:フルカワ 大西:オオニシ 島田:シマダ 水野:ミズノ 桜井:サクライ "
    "高野:タカノ 渡部:ワタナベ 吉川:ヨシカワ 山内:ヤマウチ 西田:ニシダ 飯田:イイダ 菊池:キクチ "
    "西川:ニシカワ 小松:コマツ 北村:キタムラ 安田:ヤスダ 五十嵐:イガラシ 川口:カワグチ "
    "平田:ヒラタ 関:セキ 中田:ナカタ 久保田:クボタ 服部:ハットリ 東:ヒガシ 岩田:イワタ "
    "土屋:ツチヤ 川崎:カワサキ 福島:フクシマ 本田:ホンダ 辻:ツジ 樋口:ヒグチ 秋山:アキヤマ "
    "田口:タグチ 永井:ナガイ 山中:ヤマナカ 中西:ナカニシ 吉村:ヨシムラ 川上:カワカミ 石原:イシハラ "
    "大橋:オオハシ 松岡:マツオカ 馬場:ババ 浅野:アサノ 荒木:アラキ 大久保:オオクボ 野田:ノダ "
    "小沢:オザワ 田辺:タナベ 川村:カワムラ 星野:ホシノ 黒田:クロダ 堀:ホリ 尾崎:オザキ "
    "望月:モチヅキ 永田:ナガタ 熊谷:クマガイ 内藤:ナイトウ 松村:マツムラ 西山:ニシヤマ "
    "大谷:オオタニ 平井:ヒライ 大島:オオシマ 岩本:イワモト 片山:カタヤマ 本間:ホンマ 早川:ハヤカワ "
    "横田:ヨコタ 岡崎:オカザキ 荒井:アライ 大石:オオイシ 鎌田:カマタ 成田:ナリタ 宮田:ミヤタ "
    "小田:オダ 石橋:イシバシ 篠原:シノハラ 須藤:スドウ 河合:カワイ 大内:オオウチ 小池:コイケ "
    "吉岡:ヨシオカ 高山:タカヤマ 上原:ウエハラ 長田:ナガタ 小西:コニシ 宇野:ウノ 新田:ニッタ "
    "福井:フクイ 北川:キタガワ 森本:モリモト 松下:マツシタ 菅野:カンノ 前川:マエカワ "
    "中谷:ナカタニ 奥村:オクムラ 沢田:サワダ 大森:オオモリ 桑原:クワバラ 小谷:コタニ "
    "松浦:マツウラ 宮下:ミヤシタ 竹田:タケダ 吉野:ヨシノ 西尾:ニシオ 村井:ムライ 小原:オハラ "
    "川田:カワダ 栗原:クリハラ 白石:シライシ 南:ミナミ 水谷:ミズタニ 杉浦:スギウラ 堀内:ホリウチ "
    "関口:セキグチ 伊東:イトウ 矢野:ヤノ 岡:オカ 浜田:ハマダ 小森:コモリ 松永:マツナガ 岸:キシ "
    "広瀬:ヒロセ 河村:カワムラ 長尾:ナガオ 高井:タカイ 大和田:オオワダ 武藤:ムトウ 金井:カナイ "
    "富田:トミタ 井口:イグチ 徳田:トクダ 西:ニシ 吉本:ヨシモト 三宅:ミヤケ 桑田:クワタ "
    "植田:ウエダ 堤:ツツミ 中井:ナカイ 岡村:オカムラ 坂口:サカグチ 沖田:オキタ 比嘉:ヒガ "
    "金城:キンジョウ 大城:オオシロ 宮城:ミヤギ 新垣:アラカキ 上地:ウエチ 佐久間:サクマ "
    "飯塚:イイヅカ 相馬:ソウマ 小笠原:オガサワラ 一ノ瀬:イチノセ 東海林:ショウジ "
    "勅使河原:テシガワラ 髙橋:タカハシ 齋藤:サイトウ 渡邊:ワタナベ 澤田:サワダ 櫻井:サクライ "
    "濱田:ハマダ 廣瀬:ヒロセ"
)

# Given names by sex ("1" male, "2" female) and birth cohort: names follow their era.
_COHORTS = (1946, 1966, 1986, 2006)  # born before 1946, 1946-65, 1966-85, 1986-2005, 2006-
_GIVEN_TEXT = {
    "1": (
        "清:キヨシ 茂:シゲル 勇:イサム 正:タダシ 博:ヒロシ 実:ミノル 進:ススム 武:タケシ 稔:ミノル "
        "正雄:マサオ 三郎:サブロウ 一郎:イチロウ 正一:ショウイチ 勝:マサル 保:タモツ 昭:アキラ "
        "豊:ユタカ 和夫:カズオ 義雄:ヨシオ 秀夫:ヒデオ 幸雄:ユキオ 貞夫:サダオ",
        "誠:マコト 浩:ヒロシ 修:オサム 隆:タカシ 明:アキラ 悟:サトル 聡:サトシ 和彦:カズヒコ "
        "哲也:テツヤ 秀樹:ヒデキ 健一:ケンイチ 信也:シンヤ 達也:タツヤ 洋一:ヨウイチ 英樹:ヒデキ "
        "幸一:コウイチ 浩二:コウジ 和也:カズヤ 敏夫:トシオ 博之:ヒロユキ 康弘:ヤスヒロ",
        "誠:マコト 大輔:ダイスケ 直樹:ナオキ 哲也:テツヤ 剛:ツヨシ 学:マナブ 健太郎:ケンタロウ "
        "拓也:タクヤ 智:サトシ 健:ケン 淳:ジュン 洋平:ヨウヘイ 雄一:ユウイチ 亮:リョウ "
        "英明:ヒデアキ 正樹:マサキ 徹:トオル 裕介:ユウスケ 崇:タカシ 秀明:ヒデアキ",
        "翔太:ショウタ 拓海:タクミ 健太:ケンタ 大輝:ダイキ 翔:ショウ 大樹:ダイキ 蓮:レン 翼:ツバサ "
        "颯太:ソウタ 陸:リク 海斗:カイト 優斗:ユウト 大翔:ヒロト 悠斗:ユウト 涼:リョウ "
        "和真:カズマ 駿:シュン 亮太:リョウタ 雄大:ユウダイ 直人:ナオト 翔平:ショウヘイ",
        "蓮:レン 陽翔:ハルト 湊:ミナト 蒼:アオイ 樹:イツキ 悠真:ユウマ 大和:ヤマト 陽向:ヒナタ "
        "朝陽:アサヒ 悠人:ユウト 颯:ハヤテ 律:リツ 碧:アオイ 新:アラタ 結翔:ユイト 奏太:ソウタ "
        "蒼空:ソラ 晴:ハル 凪:ナギ 湊斗:ミナト",
    ),
    "2": (
        "和子:カズコ 幸子:サチコ 節子:セツコ 文子:フミコ 久子:ヒサコ 信子:ノブコ 千代子:チヨコ "
        "静子:シズコ 清子:キヨコ 正子:マサコ 芳子:ヨシコ 照子:テルコ 美代子:ミヨコ 光子:ミツコ "
        "ミツ:ミツ ハル:ハル キヨ:キヨ 富子:トミコ 八重子:ヤエコ 君子:キミコ 花子:ハナコ",
        "恵子:ケイコ 京子:キョウコ 洋子:ヨウコ 幸子:サチコ 美智子:ミチコ 悦子:エツコ 弘子:ヒロコ "
        "純子:ジュンコ 由美子:ユミコ 順子:ジュンコ 久美子:クミコ 典子:ノリコ 明美:アケミ "
        "裕子:ユウコ 直美:ナオミ 真理子:マリコ 恵美子:エミコ 陽子:ヨウコ 孝子:タカコ",
        "裕子:ユウコ 真由美:マユミ 智子:トモコ 久美子:クミコ 明美:アケミ 美穂:ミホ 直美:ナオミ "
        "由美:ユミ 恵:メグミ 香織:カオリ 理恵:リエ 麻美:アサミ 美香:ミカ 愛:アイ 綾:アヤ "
        "千秋:チアキ 由紀:ユキ 真紀:マキ 敦子:アツコ 奈美:ナミ",
        "美咲:ミサキ 彩:アヤ 愛:アイ 舞:マイ 萌:モエ 沙織:サオリ 麻衣:マイ 優花:ユウカ 七海:ナナミ "
        "葵:アオイ 遥:ハルカ 結衣:ユイ 陽菜:ヒナ 彩花:アヤカ 明日香:アスカ 千尋:チヒロ 杏:アン "
        "菜々子:ナナコ 真央:マオ さくら:サクラ 美月:ミツキ",
        "陽葵:ヒマリ 凛:リン 結菜:ユイナ 紬:ツムギ 芽依:メイ 葵:アオイ 結愛:ユア 莉子:リコ "
        "美桜:ミオ さくら:サクラ 心春:コハル 咲良:サクラ 澪:ミオ 花:ハナ 詩:ウタ 陽菜:ヒナ "
        "翠:スイ 琴音:コトネ 杏:アン 芽生:メイ",
    ),
}
GIVEN_NAMES: dict[str, tuple[tuple[tuple[str, str], ...], ...]] = {
    sex: tuple(_pairs(text) for text in cohorts) for sex, cohorts in _GIVEN_TEXT.items()
}

# Foreign residents: nationality, weight (roughly Japan's resident foreign population), family
# names and given names (male | female) as they would be entered, with readings.
_FOREIGN_TEXT = (
    ("中国", 27, "王:ワン 李:リ 張:チョウ 劉:リュウ 陳:チン 楊:ヤン 趙:チョウ 黄:コウ 周:シュウ",
     "偉:ウェイ 強:チャン 磊:レイ 軍:ジュン 浩然:ハオラン", "芳:ファン 娜:ナ 静:ジン 麗:リー 敏:ミン"),
    ("ベトナム", 17, "NGUYEN:グエン TRAN:チャン LE:レ PHAM:ファム HOANG:ホアン VU:ヴ DANG:ダン",
     "VAN_HUNG:ヴァンフン VAN_NAM:ヴァンナム DUC_ANH:ドゥックアイン MINH_TUAN:ミントゥアン",
     "THI_LAN:ティラン THI_HOA:ティホア THI_MAI:ティマイ NGOC_ANH:ゴックアイン"),
    ("韓国", 12, "金:キム 李:イ 朴:パク 崔:チェ 鄭:チョン 姜:カン",
     "民俊:ミンジュン 志勲:ジフン 賢雨:ヒョヌ 成浩:ソンホ", "智恵:チヘ 秀晶:スジョン 英姫:ヨンヒ 恩貞:ウンジョン"),
    ("フィリピン", 10, "SANTOS:サントス REYES:レイエス CRUZ:クルス GARCIA:ガルシア MENDOZA:メンドーサ",
     "JOSE:ホセ MARK:マーク JOHN_PAUL:ジョンポール", "MARIA:マリア ANGELICA:アンジェリカ KRISTINE:クリスティン"),
    ("ブラジル", 6, "SILVA:シルバ SANTOS:サントス OLIVEIRA:オリベイラ SOUZA:ソウザ PEREIRA:ペレイラ",
     "LUCAS:ルーカス GABRIEL:ガブリエル RAFAEL:ハファエル", "ANA:アナ JULIANA:ジュリアナ MARIANA:マリアナ"),
    ("ネパール", 6, "GURUNG:グルン THAPA:タパ SHRESTHA:シュレスタ RAI:ライ TAMANG:タマン",
     "RAM:ラム BIKASH:ビカス SUNIL:スニル", "SITA:シタ ANITA:アニタ PRAMILA:プラミラ"),
    ("インドネシア", 5, "SETIAWAN:セティアワン WIJAYA:ウィジャヤ SANTOSO:サントソ PRATAMA:プラタマ",
     "BUDI:ブディ AGUS:アグス RIZKY:リズキ", "DEWI:デウィ SRI:スリ PUTRI:プトゥリ"),
    ("ミャンマー", 3, "AUNG:アウン KYAW:チョー ZAW:ゾー HTET:テッ",
     "MIN_THU:ミントゥ NAING:ナイン", "AYE_AYE:エーエー SU_SU:スースー"),
    ("台湾", 2, "陳:チン 林:リン 黄:コウ 張:チョウ",
     "家豪:チャーハオ 志明:ジーミン", "怡君:イージュン 雅婷:ヤーティン"),
    ("米国", 2, "SMITH:スミス JOHNSON:ジョンソン WILLIAMS:ウィリアムズ BROWN:ブラウン",
     "JAMES:ジェームズ MICHAEL:マイケル DAVID:デイビッド", "EMILY:エミリー SARAH:サラ JESSICA:ジェシカ"),
)


FOREIGN_NATIONALITIES = tuple(
    (nat, weight, _pairs(fam), {"1": _pairs(male), "2": _pairs(female)})
    for nat, weight, fam, male, female in _FOREIGN_TEXT
)
# 在留資格 with weights, their 在留期間, and the 30条の45 category.
RESIDENCE_STATUSES = (
    ("永住者", 30, "無期限", "中長期在留者"), ("技術・人文知識・国際業務", 15, "5年", "中長期在留者"),
    ("技能実習", 14, "1年", "中長期在留者"), ("留学", 12, "4年3月", "中長期在留者"),
    ("特定技能", 9, "1年", "中長期在留者"), ("家族滞在", 7, "3年", "中長期在留者"),
    ("定住者", 6, "5年", "中長期在留者"), ("日本人の配偶者等", 5, "3年", "中長期在留者"),
)
SPECIAL_PERMANENT = ("特別永住者", "無期限", "特別永住者")

# --- places -------------------------------------------------------------------------------------

TOWN_BASES = _pairs(
    "本町:ホンチョウ 栄町:サカエマチ 緑町:ミドリチョウ 旭町:アサヒマチ 中央:チュウオウ "
    "幸町:サイワイチョウ 錦町:ニシキチョウ 寿町:コトブキチョウ 宮下:ミヤシタ 大手町:オオテマチ "
    "新町:シンマチ 若葉:ワカバ 桜木町:サクラギチョウ 東町:ヒガシマチ 西町:ニシマチ 南町:ミナミマチ "
    "北町:キタマチ 松原:マツバラ 青葉台:アオバダイ 駅前:エキマエ 元町:モトマチ 港町:ミナトマチ "
    "山手町:ヤマテチョウ 日の出町:ヒノデチョウ 富士見:フジミ 昭和町:ショウワチョウ 末広町:スエヒロチョウ "
    "泉町:イズミチョウ 桜ケ丘:サクラガオカ 光が丘:ヒカリガオカ 緑が丘:ミドリガオカ 柳町:ヤナギマチ "
    "川端町:カワバタチョウ 城南:ジョウナン 城東:ジョウトウ 花園:ハナゾノ 住吉町:スミヨシチョウ "
    "八幡町:ハチマンチョウ 天神町:テンジンチョウ 千代田:チヨダ"
)
_CHOME = ("", "一", "二", "三", "四", "五", "六", "七", "八", "九")
_CHOME_KANA = ("", "イッ", "ニ", "サン", "ヨン", "ゴ", "ロク", "ナナ", "ハッ", "キュウ")
_BUILDINGS = ("メゾン", "コーポ", "ハイツ", "グランドパレス", "レジデンス", "パークハウス", "荘",
              "ヴィラ", "シティハイツ", "フォレスト")
_HONSEKI = ("東京都千代田区千代田1番", "大阪府大阪市北区中之島一丁目3番",
            "北海道札幌市中央区北一条西二丁目1番地", "宮城県仙台市青葉区本町三丁目8番地",
            "愛知県名古屋市中区三の丸三丁目1番", "福岡県福岡市中央区天神一丁目8番地",
            "広島県広島市中区国泰寺町一丁目6番34号", "新潟県新潟市中央区学校町通1番町602番地1",
            "鹿児島県鹿児島市山下町11番1号", "長野県長野市大字鶴賀緑町1613番地",
            "石川県金沢市広坂一丁目1番1号", "沖縄県那覇市泉崎一丁目1番1号",
            "神奈川県横浜市中区港町一丁目1番地",
            "京都府京都市中京区寺町通御池上る上本能寺前町488番地")
_PREVIOUS = ("大阪府大阪市北区梅田一丁目1番1号", "東京都世田谷区太子堂四丁目1番1号",
             "埼玉県さいたま市浦和区常盤六丁目4番4号", "千葉県千葉市中央区千葉港1番1号",
             "兵庫県神戸市中央区加納町六丁目5番1号", "静岡県静岡市葵区追手町5番1号",
             "北海道旭川市6条通9丁目46番地", "福岡県北九州市小倉北区城内1番1号",
             "宮城県仙台市青葉区国分町三丁目7番1号", "愛知県名古屋市中区三の丸三丁目1番1号",
             "岡山県岡山市北区大供一丁目1番1号", "熊本県熊本市中央区手取本町1番1号")

# Japan's population by 5-year age band (millions, about 2025): ageing, with few children.
_PYRAMID = (4.0, 4.7, 5.2, 5.5, 6.2, 6.3, 6.4, 7.1, 7.9, 9.2, 9.6, 8.3, 7.5, 7.3, 9.0, 7.6, 6.0,
            3.9, 1.9, 0.5, 0.1)
_MAX_AGE = 104
_AGE_CUM = list(accumulate(_PYRAMID[min(a // 5, 20)] for a in range(_MAX_AGE + 1)))

# Household kinds and their shares of households (about the census's), average ~2.2 people.
_KINDS = (("single_young", 13), ("single_middle", 9), ("single_elderly", 17),
          ("couple", 7), ("couple_elderly", 15), ("family", 25), ("single_parent", 7),
          ("three_generations", 5), ("siblings", 2))
_NOTICES_SINCE = date(1968, 1, 1).toordinal()


def _cum(weights: Iterable[float]) -> list[float]:
    return list(accumulate(weights))


class _Picker:
    """Weighted choice with precomputed cumulative weights (random.choices, minus overhead)."""

    def __init__(self, items: Sequence[Any], weights: Iterable[float]) -> None:
        self.items = items
        self.cum = _cum(weights)
        self.total = self.cum[-1]

    def __call__(self, rng: random.Random) -> Any:
        return self.items[bisect_left(self.cum, rng.random() * self.total)]


_SURNAME = _Picker(SURNAMES, [1 / (rank + 8) for rank in range(len(SURNAMES))])
_KIND = _Picker([k for k, _ in _KINDS], [w for _, w in _KINDS])
_NATIONALITY = _Picker(FOREIGN_NATIONALITIES, [n[1] for n in FOREIGN_NATIONALITIES])
_STATUS = _Picker(RESIDENCE_STATUSES, [s[1] for s in RESIDENCE_STATUSES])


def town_master(seed: int, count: int | None = None,
                bases: Sequence[tuple[str, str]] = TOWN_BASES) -> list[dict[str, str]]:
    """A 町字 master of 20-60 towns (or `count`): base names with 一丁目, 二丁目... Codes are
    7 digits, 町字 (4) + 丁目 (3), as in the アドレス・ベース・レジストリ."""
    rng = random.Random(f"towns-{seed}")  # noqa: S311 - fiction, not secrets
    wanted = count if count is not None else rng.randint(20, 60)
    order = list(range(len(bases)))
    rng.shuffle(order)
    towns: list[dict[str, str]] = []
    for n, i in enumerate(order * (wanted // max(len(order), 1) + 1)):
        if len(towns) >= wanted:
            break
        name, kana = bases[i]
        chome = rng.choice((0, 2, 3, 3, 4, 5, 6)) if n < len(order) else 0
        postcode = f"{rng.randint(100, 999)}{rng.randint(0, 9999):04d}"
        round_ = n // len(order)  # a base reused: a new 大字 code (e.g. 新本町)
        prefix = ("", "新", "東", "西", "南", "北")[round_ % 6]
        prefix_kana = ("", "シン", "ヒガシ", "ニシ", "ミナミ", "キタ")[round_ % 6]
        base_code = f"{i + 1 + round_ * len(bases):04d}"
        for c in range(1, chome + 1) if chome else (0,):
            if len(towns) >= wanted:
                break
            towns.append({"code": f"{base_code}{c:03d}",
                          "name": f"{prefix}{name}{_CHOME[c]}{'丁目' if c else ''}",
                          "name_kana": f"{prefix_kana}{kana}{_CHOME_KANA[c]}{'チョウメ' if c else ''}",
                          "postcode": postcode})
    return towns


# --- the population -----------------------------------------------------------------------------


def _below(rng: random.Random, n: int) -> int:
    """rng.randrange(n) at a fraction of the cost (the generator draws millions)."""
    return int(rng.random() * n)


def _between(rng: random.Random, low: int, high: int) -> int:
    return low + int(rng.random() * (high - low + 1))


def _choice(rng: random.Random, items: Sequence[Any]) -> Any:
    return items[int(rng.random() * len(items))]


@lru_cache(maxsize=1 << 16)
def _iso(ordinal: int) -> str:
    return date.fromordinal(ordinal).isoformat()


class _Generator:
    def __init__(self, lgcode: str, town_codes: Sequence[str], seed: int, as_of: date,
                 foreign_share: float, my_number_share: float) -> None:
        if not town_codes:
            raise ValueError("a population needs at least one town")
        self.rng = random.Random(f"population-{lgcode}-{seed}")  # noqa: S311 - fiction
        self.towns = list(town_codes)
        self.as_of = as_of
        self.today = as_of.toordinal()
        self.foreign_household = foreign_share * 1.25  # foreign households are smaller
        self.my_number_share = my_number_share
        self.count = 0
        # Distinct codes without bookkeeping: i -> (a*i + b) mod 10^n is a bijection when a
        # is coprime with 10, so the n-th resident's code never repeats.
        self.code_a = 3_784_516_927
        self.number_a = 71_234_567_891
        self.code_b = self.rng.randrange(10**10)
        self.number_b = self.rng.randrange(10**11)
        # Addresses drawn from pools made once: a draw per household instead of five.
        rng = self.rng
        self.banchi = [
            f"{_between(rng, 1, 40)}番地{_between(rng, 1, 30)}" if k % 5 < 2
            else f"{_between(rng, 1, 30)}番{_between(rng, 1, 25)}号" if k % 5 < 3
            else f"{_between(rng, 1, 30)}-{_between(rng, 1, 25)}" for k in range(4000)]
        self.katagaki = [
            f"{_choice(rng, _BUILDINGS)}{_choice(rng, ('桜', '緑', '本町', '駅前', 'A', 'B'))} "
            f"{_between(rng, 1, 12)}{_between(rng, 1, 12):02d}号室" for _ in range(1500)]

    # small draws ------------------------------------------------------------------------------

    def age(self, low: int, high: int) -> int:
        rng_value = self.rng.random()
        lo = _AGE_CUM[low - 1] if low > 0 else 0.0
        return bisect_left(_AGE_CUM, lo + rng_value * (_AGE_CUM[high] - lo))

    def birth(self, age: int) -> int:
        """An ordinal birth date for someone `age` years old today."""
        return self.today - int(age * 365.2425) - _below(self.rng, 365)

    def given(self, sex: str, birth: int) -> tuple[str, str]:
        year = int(_iso(birth)[:4])
        cohort = bisect_left(_COHORTS, year + 1)
        names = GIVEN_NAMES[sex][cohort]
        return names[int(self.rng.random() * len(names))]

    def new_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    # households -------------------------------------------------------------------------------

    def household(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        rng = self.rng
        if rng.random() < self.foreign_household:
            people = self.foreign_people()
        else:
            people = self.japanese_people(_KIND(rng))
        household_id = self.new_id()
        # When the household came: one date for those already born; later births join then.
        oldest = max(self.today - p["birth"] for p in people) // 365
        born_here = rng.random() < 0.2 and not people[0].get("foreign")
        arrived = self.today - _below(rng, 1 + min(oldest - 18, 45) * 365) if oldest > 18 \
            else self.today - _below(rng, 365)
        moved = arrived + _below(rng, max(self.today - arrived, 1)) if rng.random() < 0.3 \
            else arrived
        # 戸籍: those sharing the head's surname share its 本籍 and 筆頭者 (the head).
        family = (f"{people[0]['surname'][0]} {people[0]['given'][0]}", _choice(rng, _HONSEKI))
        residents = []
        for p in people:
            since = p["birth"] if born_here else max(arrived, p["birth"])
            residents.append(self.resident(p, household_id, since, max(moved, since), family))
        removed_household = rng.random() < 0.012
        if removed_household:  # the whole household moved away: every record is a 除票
            latest = date.fromisoformat(max(r["address_since"] for r in residents)).toordinal()
            on = _iso(_between(rng, latest, self.today))
            reason = "国外転出" if rng.random() < 0.2 else "転出"
            for r in residents:
                r.update(status="removed", removed_on=on, removal_reason=reason)
        for r, p in zip(residents, people, strict=True):
            if p.get("status") == "removed":  # a member who died before the others left
                end = self.today if not removed_household else \
                    date.fromisoformat(r["removed_on"]).toordinal()
                died = _between(rng, date.fromisoformat(r["address_since"]).toordinal(), end)
                r.update(status="removed", removed_on=_iso(died),
                         removal_reason="死亡")
        head = residents[0]["id"]
        town = self.towns[int(rng.random() * len(self.towns))]
        banchi = self.banchi[int(rng.random() * len(self.banchi))]
        katagaki = self.katagaki[int(rng.random() * len(self.katagaki))] \
            if rng.random() < 0.4 else ""
        record = {"type": "household", "id": household_id,
                  "address": {"town_code": town, "banchi": banchi, "katagaki": katagaki},
                  "head_id": head, "status": "removed" if removed_household else "active",
                  "version": 1}
        return record, residents

    def japanese_people(self, kind: str) -> list[dict[str, Any]]:
        rng, age = self.rng, self.age
        family = _SURNAME(rng)
        people: list[dict[str, Any]] = []

        def person(years: int, sex: str, relationship: str, surname: tuple[str, str] = family,
                   **extra: Any) -> dict[str, Any]:
            birth = self.birth(years)
            p = {"surname": surname, "sex": sex, "relationship": relationship, "birth": birth,
                 "given": self.given(sex, birth), **extra}
            people.append(p)
            return p

        def sex() -> str:
            return "1" if rng.random() < 0.5 else "2"

        def children(mother_age: int, count: int) -> None:
            for _ in range(count):
                years = mother_age - _between(rng, 22, 40)
                if years >= 0:
                    person(min(years, 40), sex(), "子")

        if kind == "single_young":
            person(age(18, 39), sex(), HEAD)
        elif kind == "single_middle":
            person(age(40, 64), sex(), HEAD)
        elif kind == "single_elderly":
            widow = rng.random() < 0.65
            years = age(65, _MAX_AGE)
            person(years, "2" if widow else "1", HEAD)
            if rng.random() < 0.35:  # the late spouse's record remains as a 除票
                person(min(years + _between(rng, -3, 5), _MAX_AGE), "1" if widow else "2",
                       "夫" if widow else "妻", status="removed")
        elif kind in ("couple", "couple_elderly", "family", "three_generations"):
            low, high = {"couple": (22, 64), "couple_elderly": (65, 98),
                         "family": (26, 58), "three_generations": (32, 60)}[kind]
            years = age(low, high)
            wife = min(max(years + _between(rng, -6, 3), 18), _MAX_AGE)
            husband_heads = rng.random() < 0.9
            maiden = _SURNAME(rng)
            former = maiden[0] if rng.random() < 0.03 else ""
            if husband_heads:
                person(years, "1", HEAD)
                person(wife, "2", "妻", former_surname=former)
            else:
                person(wife, "2", HEAD)
                person(years, "1", "夫")
            if kind == "family":
                children(wife, _choice(rng, (1, 1, 2, 2, 2, 3)))
            elif kind == "three_generations":
                children(wife, _choice(rng, (0, 1, 2, 2, 3)))
                parent = min(years + _between(rng, 24, 34), _MAX_AGE)
                if rng.random() < 0.5:
                    person(parent, "1", "父")
                person(min(parent - _between(rng, 0, 4), _MAX_AGE), "2", "母")
        elif kind == "single_parent":
            mother = rng.random() < 0.85
            years = age(24, 58)
            person(years, "2" if mother else "1", HEAD)
            children(years, _choice(rng, (1, 1, 2)))
        else:  # siblings sharing a home
            years = age(30, 85)
            person(years, sex(), HEAD)
            younger = max(years - _between(rng, 1, 8), 18)
            rel = ("弟" if rng.random() < 0.5 else "妹")
            person(younger, "1" if rel == "弟" else "2", rel)
        return people

    def foreign_people(self) -> list[dict[str, Any]]:
        rng = self.rng
        nationality, _, families, given = _NATIONALITY(rng)
        special = nationality == "韓国" and rng.random() < 0.4
        family = families[int(rng.random() * len(families))]
        people: list[dict[str, Any]] = []

        def person(years: int, sex: str, relationship: str) -> None:
            names = given[sex]
            if special:
                status, period, category = SPECIAL_PERMANENT
            else:
                status, _, period, category = _STATUS(rng)
            alias = ""
            if special and rng.random() < 0.5:  # 通称 registered by many special permanent
                alias = f"{_SURNAME(rng)[0]} {self.given(sex, self.birth(years))[0]}"
            people.append({
                "surname": family, "sex": sex, "relationship": relationship,
                "birth": self.birth(years), "given": names[int(rng.random() * len(names))],
                "foreign": {
                    "nationality": nationality, "residence_status": status, "period": period,
                    "expiry": _iso(self.today + _between(rng, 30, 2500)),
                    "card_number": self.card_number(), "alias": alias, "category": category}})

        if special:
            person(self.age(30, 95), "1" if rng.random() < 0.5 else "2", HEAD)
        elif rng.random() < 0.6:
            person(self.age(19, 45), "1" if rng.random() < 0.55 else "2", HEAD)
        else:
            years = self.age(25, 50)
            person(years, "1", HEAD)
            person(max(years - _between(rng, 0, 5), 20), "2", "妻")
            for _ in range(_choice(rng, (0, 1, 2))):
                child = years - _between(rng, 22, 35)
                if child >= 0:
                    person(child, "1" if rng.random() < 0.5 else "2", "子")
        return people

    def card_number(self) -> str:
        rng = self.rng
        letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
        return (f"{letters[_below(rng, 24)]}{letters[_below(rng, 24)]}"
                f"{_below(rng, 10**8):08d}{letters[_below(rng, 24)]}"
                f"{letters[_below(rng, 24)]}")

    def resident(self, p: dict[str, Any], household_id: str, since: int, address_since: int,
                 family: tuple[str, str]) -> dict[str, Any]:
        rng = self.rng
        i = self.count
        self.count += 1
        code = with_check_digit(f"{(self.code_a * i + self.code_b) % 10**10:010d}", "juminhyo")
        my_number = None
        if rng.random() < self.my_number_share:
            my_number = with_check_digit(
                f"{(self.number_a * i + self.number_b) % 10**11:011d}", "my_number")
        notified = since + _below(rng, 14)
        foreign = p.get("foreign")
        surname, given = p["surname"], p["given"]
        born_here = since == p["birth"]
        if foreign:
            honseki = hittosha = ""
        elif family[0].startswith(surname[0] + " "):
            hittosha, honseki = family
        else:
            hittosha, honseki = f"{surname[0]} {given[0]}", _choice(rng, _HONSEKI)
        record = {
            "type": "resident", "id": self.new_id(), "household_id": household_id,
            "relationship": p["relationship"], "juminhyo_code": code, "my_number": my_number,
            "family_name": surname[0], "given_name": given[0], "family_kana": surname[1],
            "given_kana": given[1], "birth_date": _iso(p["birth"]),
            "sex": p["sex"], "resident_since": _iso(since),
            "address_since": _iso(address_since),
            # 住民基本台帳法 took effect in 1967: older entries have no notice date.
            "notified_on": (_iso(min(notified, self.today))
                            if since >= _NOTICES_SINCE else None),
            "status": "active", "removed_on": None, "removal_reason": "",
            "former_surname": p.get("former_surname", ""),
            "honseki": honseki,
            "hittosha": hittosha,
            "previous_address": "" if born_here else (
                f"国外({foreign['nationality']})" if foreign
                else _PREVIOUS[int(rng.random() * len(_PREVIOUS))]),
            "foreign": foreign,
            "version": 1,
        }
        return record


def population(lgcode: str, town_codes: Sequence[str], residents: int, *, seed: int = 0,
               as_of: date, foreign_share: float = 0.02, my_number_share: float = 0.9
               ) -> Iterator[dict[str, Any]]:
    """The header, then households each followed by their residents: exactly `residents`
    resident records (the last household may be cut short, keeping its head)."""
    yield {"format": FORMAT, "lgcode": lgcode,
           "exported_at": f"{as_of.isoformat()}T00:00:00+09:00",
           "generator": "kiban.registry.synthetic", "seed": seed}
    gen = _Generator(lgcode, town_codes, seed, as_of, foreign_share, my_number_share)
    left = residents
    while left > 0:
        household, members = gen.household()
        members = members[:left]
        left -= len(members)
        yield household
        yield from members


def write_jsonl(records: Iterable[dict[str, Any]], out: TextIO) -> int:
    """Writes records as JSON Lines (they are built in the format's field order); returns the
    number of residents."""
    count = 0
    write = out.write
    for record in records:
        count += record.get("type") == "resident"
        write(dumps(record) + "\n")
    return count
