"""The demo catalogs: repair codes with flat-rate hours, fault codes and parts per product line.

(code, 中文, English, hours) / (code, 中文, English) / (part number, 中文, English, price,
returnable); used by service/demo.py.
"""

REPAIR_CODES = {
    "AC": [("R01", "更换压缩机", "Replace compressor", "3.00"),
           ("R02", "补充制冷剂", "Recharge refrigerant", "1.50"),
           ("R03", "更换电脑板", "Replace control board", "1.00"),
           ("R04", "更换风扇电机", "Replace fan motor", "1.50"),
           ("R05", "清洗保养", "Cleaning and maintenance", "1.00")],
    "RF": [("R01", "更换压缩机", "Replace compressor", "3.00"),
           ("R02", "更换温控器", "Replace thermostat", "1.00"),
           ("R03", "更换门封", "Replace door seal", "0.80"),
           ("R04", "补焊管路并加注制冷剂", "Braze pipes and recharge refrigerant", "2.50"),
           ("R05", "更换化霜加热器", "Replace defrost heater", "1.20")],
    "WM": [("R01", "更换电机", "Replace motor", "2.00"),
           ("R02", "更换排水泵", "Replace drain pump", "1.00"),
           ("R03", "更换电脑板", "Replace control board", "1.00"),
           ("R04", "更换轴承", "Replace bearings", "3.00"),
           ("R05", "更换门锁", "Replace door lock", "0.80")],
    "TV": [("R01", "更换主板", "Replace main board", "1.50"),
           ("R02", "更换电源板", "Replace power board", "1.00"),
           ("R03", "更换背光灯条", "Replace backlight strips", "2.00"),
           ("R04", "更换液晶屏", "Replace LCD panel", "2.50"),
           ("R05", "软件升级", "Software upgrade", "0.50")],
}

FAULT_CODES = {
    "AC": [("F01", "不制冷", "Not cooling"), ("F02", "不制热", "Not heating"),
           ("F03", "室内机漏水", "Indoor unit leaking water"), ("F04", "噪音大", "Loud noise"),
           ("F05", "不开机", "Does not start"), ("F06", "显示故障代码", "Shows an error code")],
    "RF": [("F01", "不制冷", "Not cooling"), ("F02", "结霜严重", "Heavy frost"),
           ("F03", "噪音大", "Loud noise"), ("F04", "漏水", "Leaking water"),
           ("F05", "不开机", "Does not start")],
    "WM": [("F01", "不脱水", "Does not spin"), ("F02", "不排水", "Does not drain"),
           ("F03", "漏水", "Leaking water"), ("F04", "异响", "Abnormal noise"),
           ("F05", "门打不开", "Door does not open")],
    "TV": [("F01", "黑屏", "Black screen"), ("F02", "有声无图", "Sound but no picture"),
           ("F03", "不开机", "Does not start"), ("F04", "画面闪烁", "Flickering picture"),
           ("F05", "无信号", "No signal")],
}

PARTS = {
    "AC": [("AC-P001", "压缩机", "Compressor", "860.00", True),
           ("AC-P002", "电脑板", "Control board", "320.00", True),
           ("AC-P003", "风扇电机", "Fan motor", "180.00", True),
           ("AC-P004", "遥控器", "Remote control", "45.00", False),
           ("AC-P005", "制冷剂 R32（1 kg）", "Refrigerant R32 (1 kg)", "120.00", False),
           ("AC-P006", "启动电容", "Start capacitor", "25.50", False)],
    "RF": [("RF-P001", "压缩机", "Compressor", "780.00", True),
           ("RF-P002", "温控器", "Thermostat", "65.00", True),
           ("RF-P003", "门封条", "Door seal", "55.00", False),
           ("RF-P004", "化霜加热器", "Defrost heater", "90.00", True),
           ("RF-P005", "主控板", "Main control board", "260.00", True)],
    "WM": [("WM-P001", "电机", "Motor", "420.00", True),
           ("WM-P002", "排水泵", "Drain pump", "85.00", True),
           ("WM-P003", "电脑板", "Control board", "260.00", True),
           ("WM-P004", "轴承组件", "Bearing kit", "150.00", False),
           ("WM-P005", "门锁", "Door lock", "60.00", False)],
    "TV": [("TV-P001", "主板", "Main board", "380.00", True),
           ("TV-P002", "电源板", "Power board", "210.00", True),
           ("TV-P003", "背光灯条", "Backlight strip set", "150.00", True),
           ("TV-P004", "液晶屏", "LCD panel", "1650.00", True),
           ("TV-P005", "遥控器", "Remote control", "35.00", False)],
}

FAULT_TEXTS = ["客户反映使用中突然停机", "开机后约十分钟出现故障", "近一周故障频繁出现",
               "搬家后首次使用即出现问题", "夜间使用时故障明显", "客户已自行断电重启，无效"]
RESOLUTIONS = ["检测后更换故障部件，试机正常", "清洁并紧固线路，试机一小时正常",
               "更换部件并升级程序，运行正常", "调整安装位置并复查，故障排除",
               "电话指导客户复位设置，问题解决", "检测确认为使用不当，已向客户说明"]
PHONE_RESOLUTIONS = ["电话指导客户复位设置，问题解决", "指导客户清洗滤网，恢复正常",
                     "解答保修政策，客户满意", "电话指导后需上门，已另开工单"]
REVISIT_COMMENTS = {5: ["师傅很专业，非常满意", "上门准时，服务态度好", "维修快，满意"],
                    4: ["总体满意", "维修效果不错，等待时间稍长"],
                    3: ["一般", "上门时间比约定晚"],
                    2: ["维修后问题又出现", "沟通不够清楚"],
                    1: ["非常不满意，多次维修未解决"]}
COMPLAINTS = ["工程师上门迟到两小时且未提前通知", "维修后一周内同一故障再次出现",
              "收费与保修政策不符", "工程师服务态度差", "预约后无人联系",
              "更换的配件疑似非原装"]
RESPONSES = ["已与客户电话沟通并致歉，安排主管回访", "经核查为配件批次问题，已免费复修",
             "已对工程师进行服务规范再培训", "经核实收费无误，已向客户解释保修条款"]
VERDICT_NOTES = {"substantiated": ["经核查投诉属实，按规定扣分", "客户提供的证据充分，投诉成立"],
                 "not_substantiated": ["经回访核实，客户误解保修政策", "维修记录完整，投诉不成立"]}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
STREETS = ["人民路", "中山路", "解放大道", "建设路", "和平街", "滨江路", "世纪大道"]
CARRIERS = ["顺丰速运", "中通快递", "圆通速递", "京东物流", "德邦物流"]
