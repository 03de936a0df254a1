// The workspace's words in Vietnamese (first) and English. Static elements name
// their key in data-i18n / data-i18n-placeholder; code calls t(key, values).
// The marketer's page (campaigns.js): its own block, merged into WORDS below.
const CAMPAIGN_WORDS = {
  vi: {
    c_campaigns: 'Chiến dịch', c_new_campaign: 'Chiến dịch mới', c_edit_campaign: 'Sửa chiến dịch',
    c_audiences: 'Tập khách hàng', c_import: 'Nhập danh bạ', c_to_inbox: '← Hộp thư',
    c_import_title: 'Nhập khách hàng từ tệp CSV',
    c_import_help: 'Tệp CSV UTF-8, dòng đầu là tên cột, tối đa {max} MB. Số điện thoại được chuẩn hoá; khách trùng số hoặc e-mail được gộp; mọi dòng bị loại đều có lý do.',
    c_file: 'Tệp CSV', c_import_tags: 'Gắn nhãn cho mọi khách nhập', c_tags_placeholder: 'vd: hoi-cho-2026, vip',
    c_delimiter: 'Dấu phân cách', c_column: 'Cột trong tệp', c_maps_to: 'Nhập vào', c_examples: 'Ví dụ',
    c_ignore: '— Bỏ qua —', c_field_name: 'Họ tên', c_field_phone: 'Số điện thoại', c_field_email: 'E-mail',
    c_field_language: 'Ngôn ngữ', c_field_timezone: 'Múi giờ', c_field_birthday: 'Ngày sinh', c_field_tags: 'Nhãn',
    'c_field_consent.sms': 'Đồng ý nhận SMS', 'c_field_consent.email': 'Đồng ý nhận e-mail',
    c_field_attribute: 'Thuộc tính “{name}”', c_import_start: 'Nhập',
    c_import_running: 'đang nhập…', c_import_done: 'xong', c_import_failed: 'lỗi', c_import_interrupted: 'bị gián đoạn',
    c_rows: 'Dòng đã xử lý', c_created: 'Khách mới', c_merged: 'Gộp vào khách có sẵn', c_rejected: 'Dòng bị loại',
    c_rejected_rows: 'Các dòng bị loại và lý do', c_line: 'Dòng', c_reason: 'Lý do', c_row: 'Nội dung dòng',
    c_download_rejected: 'Tải các dòng bị loại (CSV)',
    c_new_audience: 'Tập khách hàng mới', c_audience_name: 'Tên tập', c_tags: 'Nhãn',
    c_tags_all: 'Có đủ các nhãn', c_tags_any: 'Có một trong các nhãn', c_tags_none: 'Không có nhãn nào trong',
    c_add_condition: 'Thêm điều kiện thuộc tính', c_attribute: 'Thuộc tính', c_value: 'Giá trị',
    c_consent: 'Đồng ý nhận tin', c_consent_any: 'Tất cả', c_consent_not_opted_out: 'Chưa từ chối nhận tin',
    c_consent_opted_in: 'Đã đồng ý nhận tin', c_active_after: 'Hoạt động sau ngày', c_active_before: 'Hoạt động trước ngày',
    c_has_conversation: 'Đã từng nhắn tin', c_any: 'Không quan tâm', c_yes: 'Có', c_no: 'Không',
    c_count_on: 'Đếm theo kênh', c_count: '{n} khách', c_save_audience: 'Lưu tập khách hàng',
    c_everyone: 'Mọi khách hàng', c_use_as_start: 'Dùng làm mẫu', c_campaign_for: 'Tạo chiến dịch', c_no_audiences: 'Chưa có tập khách hàng nào.',
    c_campaign_name: 'Tên chiến dịch', c_channel: 'Kênh', c_account: 'Gửi từ', c_audience: 'Tập khách hàng',
    c_pick_audience: '— Chọn tập khách hàng —', c_recipients: '{n} người nhận', c_subject: 'Tiêu đề e-mail',
    c_text: 'Nội dung', c_variables: 'Biến cá nhân hoá (bấm để chèn):', c_untitled: 'Chiến dịch chưa đặt tên',
    c_preview: 'Xem trước', c_preview_needs: 'Chọn tập khách hàng và viết nội dung để xem trước.',
    c_preview_for: 'Như {name} ({to}) sẽ nhận:', c_sms_size: '{characters} ký tự · {encoding} · {segments} tin',
    c_diacritics_stripped: 'đã bỏ dấu', c_save_draft: 'Lưu nháp', c_saved_at: 'Đã lưu lúc {time}',
    c_test_send: 'Gửi thử cho chính mình', c_test_to: 'Gửi thử tới', c_send_test: 'Gửi thử',
    c_test_sent: 'Đã gửi thử tới {to}', c_when: 'Khi nào gửi', c_schedule_at: 'Thời điểm gửi',
    c_schedule: 'Hẹn giờ gửi', c_send_now: 'Gửi ngay', c_pick_time: 'Hãy chọn thời điểm gửi.',
    c_confirm_send: 'Gửi chiến dịch này tới {n} người nhận ngay bây giờ?',
    c_confirm_schedule: 'Hẹn gửi chiến dịch này tới {n} người nhận lúc {time}?',
    c_confirm_cancel: 'Huỷ chiến dịch? Những tin chưa gửi sẽ không được gửi nữa.', c_back: 'Quay lại',
    c_status: 'Trạng thái', c_recipients_col: 'Người nhận', c_sent_of: 'Đã gửi / tổng', c_no_campaigns: 'Chưa có chiến dịch nào.',
    c_edit: 'Sửa', c_pause: 'Tạm dừng', c_resume: 'Tiếp tục', c_cancel: 'Huỷ chiến dịch',
    c_scheduled_for: 'hẹn gửi lúc {time}', c_launched_at: 'bắt đầu {time}', c_finished_at: 'kết thúc {time}',
    c_progress: 'Tiến độ', c_total: 'Tổng', c_sent: 'Đã gửi', c_delivered: 'Đã nhận', c_failed: 'Lỗi',
    c_opted_out: 'Đã từ chối nhận tin', c_waiting: 'Chờ ngoài giờ cho phép', c_frequency_capped: 'Vượt giới hạn/ngày',
    c_queued: 'Đang chờ gửi', c_skipped_other: 'Bỏ qua khác', c_replied: 'Đã trả lời',
    c_recipients_title: 'Người nhận', c_all_statuses: 'Mọi trạng thái', c_download_csv: 'Tải CSV',
    c_address: 'Địa chỉ', c_attempts: 'Lần thử', c_sent_at: 'Gửi lúc', c_replied_at: 'Trả lời lúc', c_no_recipients: 'Không có người nhận nào.',
    cs_draft: 'Nháp', cs_scheduled: 'Đã hẹn giờ', cs_running: 'Đang gửi', cs_paused: 'Tạm dừng',
    cs_cancelled: 'Đã huỷ', cs_completed: 'Hoàn tất',
    rs_pending: 'Chờ gửi', rs_sending: 'Đang gửi', rs_sent: 'Đã gửi', rs_delivered: 'Đã nhận',
    rs_failed: 'Lỗi', rs_skipped: 'Bỏ qua',
    rr_opted_out: 'đã từ chối nhận tin', rr_frequency_cap: 'vượt giới hạn mỗi ngày', rr_no_address: 'không có địa chỉ',
    rr_cancelled: 'chiến dịch bị huỷ',
  },
  en: {
    c_campaigns: 'Campaigns', c_new_campaign: 'New campaign', c_edit_campaign: 'Edit campaign',
    c_audiences: 'Audiences', c_import: 'Import contacts', c_to_inbox: '← Inbox',
    c_import_title: 'Import contacts from a CSV file',
    c_import_help: 'A UTF-8 CSV file, column names on the first line, up to {max} MB. Phone numbers are normalised; contacts with the same phone or e-mail are merged; every rejected row comes with its reason.',
    c_file: 'CSV file', c_import_tags: 'Tag every imported contact', c_tags_placeholder: 'e.g. fair-2026, vip',
    c_delimiter: 'Separator', c_column: 'Column in the file', c_maps_to: 'Import as', c_examples: 'Examples',
    c_ignore: '— Ignore —', c_field_name: 'Name', c_field_phone: 'Phone', c_field_email: 'E-mail',
    c_field_language: 'Language', c_field_timezone: 'Time zone', c_field_birthday: 'Birthday', c_field_tags: 'Tags',
    'c_field_consent.sms': 'SMS consent', 'c_field_consent.email': 'E-mail consent',
    c_field_attribute: 'Attribute “{name}”', c_import_start: 'Import',
    c_import_running: 'importing…', c_import_done: 'done', c_import_failed: 'failed', c_import_interrupted: 'interrupted',
    c_rows: 'Rows handled', c_created: 'New contacts', c_merged: 'Merged into existing', c_rejected: 'Rejected rows',
    c_rejected_rows: 'Rejected rows and why', c_line: 'Line', c_reason: 'Reason', c_row: 'Row',
    c_download_rejected: 'Download the rejected rows (CSV)',
    c_new_audience: 'New audience', c_audience_name: 'Audience name', c_tags: 'Tags',
    c_tags_all: 'Has all of the tags', c_tags_any: 'Has any of the tags', c_tags_none: 'Has none of the tags',
    c_add_condition: 'Add an attribute condition', c_attribute: 'Attribute', c_value: 'Value',
    c_consent: 'Consent', c_consent_any: 'Anyone', c_consent_not_opted_out: 'Has not opted out',
    c_consent_opted_in: 'Has opted in', c_active_after: 'Active after', c_active_before: 'Active before',
    c_has_conversation: 'Has written to us', c_any: 'Either', c_yes: 'Yes', c_no: 'No',
    c_count_on: 'Count for channel', c_count: '{n} contacts', c_save_audience: 'Save audience',
    c_everyone: 'Every contact', c_use_as_start: 'Start from this', c_campaign_for: 'New campaign', c_no_audiences: 'No audiences yet.',
    c_campaign_name: 'Campaign name', c_channel: 'Channel', c_account: 'Send from', c_audience: 'Audience',
    c_pick_audience: '— Pick an audience —', c_recipients: '{n} recipients', c_subject: 'E-mail subject',
    c_text: 'Message', c_variables: 'Personalisation (click to insert):', c_untitled: 'Untitled campaign',
    c_preview: 'Preview', c_preview_needs: 'Pick an audience and write the message to preview it.',
    c_preview_for: 'As {name} ({to}) would get it:', c_sms_size: '{characters} characters · {encoding} · {segments} SMS',
    c_diacritics_stripped: 'diacritics removed', c_save_draft: 'Save draft', c_saved_at: 'Saved at {time}',
    c_test_send: 'Test send to yourself', c_test_to: 'Send the test to', c_send_test: 'Send test',
    c_test_sent: 'Test sent to {to}', c_when: 'When to send', c_schedule_at: 'Send at',
    c_schedule: 'Schedule', c_send_now: 'Send now', c_pick_time: 'Pick the time to send at.',
    c_confirm_send: 'Send this campaign to {n} recipients now?',
    c_confirm_schedule: 'Schedule this campaign to {n} recipients at {time}?',
    c_confirm_cancel: 'Cancel the campaign? Messages not sent yet will not be sent.', c_back: 'Go back',
    c_status: 'Status', c_recipients_col: 'Recipients', c_sent_of: 'Sent / total', c_no_campaigns: 'No campaigns yet.',
    c_edit: 'Edit', c_pause: 'Pause', c_resume: 'Resume', c_cancel: 'Cancel campaign',
    c_scheduled_for: 'scheduled for {time}', c_launched_at: 'started {time}', c_finished_at: 'finished {time}',
    c_progress: 'Progress', c_total: 'Total', c_sent: 'Sent', c_delivered: 'Delivered', c_failed: 'Failed',
    c_opted_out: 'Opted out', c_waiting: 'Waiting for allowed hours', c_frequency_capped: 'Over the daily cap',
    c_queued: 'Waiting to send', c_skipped_other: 'Skipped, other', c_replied: 'Replied',
    c_recipients_title: 'Recipients', c_all_statuses: 'All statuses', c_download_csv: 'Download CSV',
    c_address: 'Address', c_attempts: 'Attempts', c_sent_at: 'Sent at', c_replied_at: 'Replied at', c_no_recipients: 'No recipients.',
    cs_draft: 'Draft', cs_scheduled: 'Scheduled', cs_running: 'Sending', cs_paused: 'Paused',
    cs_cancelled: 'Cancelled', cs_completed: 'Completed',
    rs_pending: 'Pending', rs_sending: 'Sending', rs_sent: 'Sent', rs_delivered: 'Delivered',
    rs_failed: 'Failed', rs_skipped: 'Skipped',
    rr_opted_out: 'opted out', rr_frequency_cap: 'over the daily cap', rr_no_address: 'no address',
    rr_cancelled: 'campaign cancelled',
  },
};

const WORDS = {
  vi: {
    email: 'E-mail', password: 'Mật khẩu', sign_in: 'Đăng nhập', sign_out: 'Đăng xuất',
    wrong_password: 'E-mail hoặc mật khẩu không đúng', too_many: 'Sai quá nhiều lần; hãy thử lại sau',
    enable_notifications: 'Bật thông báo', online: 'Trực tuyến', away: 'Vắng mặt', offline: 'Ngoại tuyến',
    search: 'Tìm kiếm', more: 'Xem thêm', pick_conversation: 'Chọn một cuộc hội thoại',
    take: 'Nhận xử lý', low: 'Thấp', normal: 'Bình thường', high: 'Cao', urgent: 'Khẩn cấp',
    labels: 'Nhãn (cách nhau bởi dấu phẩy)', snooze: 'Tạm hoãn', pending: 'Chờ khách trả lời', resolve: 'Hoàn tất', reopen: 'Mở lại',
    reply: 'Trả lời', private_note: 'Ghi chú nội bộ', reply_placeholder: 'Nhập trả lời — gõ / để chọn mẫu',
    note_placeholder: 'Ghi chú nội bộ — gõ @ để nhắc đồng nghiệp', send: 'Gửi',
    identities: 'Định danh', attributes: 'Thuộc tính', earlier_conversations: 'Hội thoại trước',
    shortcuts: 'Phím tắt', key_next_prev: 'Hội thoại kế / trước', key_reply: 'Trả lời',
    key_note: 'Ghi chú nội bộ', key_take: 'Nhận xử lý', key_resolve: 'Hoàn tất', key_search: 'Tìm kiếm',
    key_send: 'Gửi', key_help: 'Trợ giúp này', close: 'Đóng',
    view_mine: 'Của tôi', view_unassigned: 'Chưa phân công', view_teams: 'Nhóm của tôi', view_all: 'Tất cả',
    status_open: 'Đang mở', status_pending: 'Chờ', status_snoozed: 'Tạm hoãn', status_resolved: 'Đã xong',
    unassigned: '— Chưa phân công —', no_team: '— Không nhóm —', connected: 'Đã kết nối',
    reconnecting: 'Đang kết nối lại…', is_replying: '{name} đang trả lời…', customer_typing: 'Khách đang gõ…',
    note: 'Ghi chú', new_message: 'Tin nhắn mới từ {name}', mentioned: '{name} nhắc đến bạn',
    taken_by_other: 'Người khác đã nhận cuộc hội thoại này', failed: 'Gửi lỗi', queued: 'Đang gửi',
    sent: 'Đã gửi', delivered: 'Đã nhận', read: 'Đã xem', none: '(trống)', no_conversations: 'Không có hội thoại',
    whole_history: 'Mọi kênh của khách',
    attribute_key: 'Thuộc tính', attribute_value: 'Giá trị', add: 'Thêm', remove: 'Xoá',
    api_tokens: 'Mã API', token_name: 'Dùng cho việc gì', create: 'Tạo', revoke: 'Thu hồi',
    token_once: 'Hãy sao chép ngay: mã chỉ hiện một lần.',
    merge_with: 'Cùng một người với…', merge_search: 'Tên, số điện thoại hoặc e-mail', merge: 'Gộp',
    merge_confirm: 'Gộp {name} vào khách này? Định danh và hội thoại của họ sẽ chuyển sang đây.',
    admin: 'Quản trị', agents: 'Nhân viên', name: 'Tên', role: 'Vai trò', teams: 'Nhóm',
    audit_log: 'Nhật ký kiểm toán', time: 'Thời điểm', who: 'Ai', action: 'Hành động', target: 'Đối tượng',
    detail: 'Chi tiết', deactivate: 'Ngừng kích hoạt', role_admin: 'Quản trị', role_agent: 'Nhân viên CSKH',
    role_marketer: 'Tiếp thị',
    marketer_note: 'Hội thoại chỉ dành cho bộ phận CSKH; tài khoản tiếp thị làm việc với khách hàng và chiến dịch.',
  },
  en: {
    email: 'E-mail', password: 'Password', sign_in: 'Sign in', sign_out: 'Sign out',
    wrong_password: 'The e-mail or password is wrong', too_many: 'Too many failed sign-ins; try again later',
    enable_notifications: 'Notifications', online: 'Online', away: 'Away', offline: 'Offline',
    search: 'Search', more: 'More', pick_conversation: 'Pick a conversation',
    take: 'Take', low: 'Low', normal: 'Normal', high: 'High', urgent: 'Urgent',
    labels: 'Labels (comma-separated)', snooze: 'Snooze', pending: 'Wait on customer', resolve: 'Resolve', reopen: 'Reopen',
    reply: 'Reply', private_note: 'Private note', reply_placeholder: 'Write a reply — type / for a canned response',
    note_placeholder: 'Private note — type @ to mention a colleague', send: 'Send',
    identities: 'Identities', attributes: 'Attributes', earlier_conversations: 'Earlier conversations',
    shortcuts: 'Keyboard shortcuts', key_next_prev: 'Next / previous conversation', key_reply: 'Reply',
    key_note: 'Private note', key_take: 'Take the conversation', key_resolve: 'Resolve', key_search: 'Search',
    key_send: 'Send', key_help: 'This help', close: 'Close',
    view_mine: 'Mine', view_unassigned: 'Unassigned', view_teams: 'My teams', view_all: 'All',
    status_open: 'Open', status_pending: 'Pending', status_snoozed: 'Snoozed', status_resolved: 'Resolved',
    unassigned: '— Unassigned —', no_team: '— No team —', connected: 'Connected',
    reconnecting: 'Reconnecting…', is_replying: '{name} is replying…', customer_typing: 'The customer is typing…',
    note: 'Note', new_message: 'New message from {name}', mentioned: '{name} mentioned you',
    taken_by_other: 'Someone else has taken this conversation', failed: 'Failed', queued: 'Sending',
    sent: 'Sent', delivered: 'Delivered', read: 'Read', none: '(none)', no_conversations: 'No conversations',
    whole_history: 'All of the customer\'s channels',
    attribute_key: 'Attribute', attribute_value: 'Value', add: 'Add', remove: 'Remove',
    api_tokens: 'API tokens', token_name: 'What it is for', create: 'Create', revoke: 'Revoke',
    token_once: 'Copy it now: it is shown only once.',
    merge_with: 'Same person as…', merge_search: 'Name, phone or e-mail', merge: 'Merge',
    merge_confirm: 'Merge {name} into this contact? Their identities and conversations move here.',
    admin: 'Admin', agents: 'Agents', name: 'Name', role: 'Role', teams: 'Teams',
    audit_log: 'Audit log', time: 'Time', who: 'Who', action: 'Action', target: 'Target',
    detail: 'Detail', deactivate: 'Deactivate', role_admin: 'Admin', role_agent: 'Agent',
    role_marketer: 'Marketer',
    marketer_note: 'Conversations are for support; marketers work with contacts and campaigns.',
  },
};

for (const code of Object.keys(CAMPAIGN_WORDS)) Object.assign(WORDS[code], CAMPAIGN_WORDS[code]);

// The reports page (reports.js).
Object.assign(WORDS.vi, {
  reports: 'Báo cáo', r_period: 'Khoảng thời gian', r_last_7d: '7 ngày qua', r_last_30d: '30 ngày qua',
  r_last_90d: '90 ngày qua', r_custom: 'Tự chọn', r_since: 'Từ ngày', r_until: 'Đến ngày', r_any: '— Tất cả —',
  r_channel: 'Kênh', r_label: 'Nhãn', r_apply: 'Xem', r_download_csv: 'Tải CSV', r_summary: 'Tổng quan',
  r_by_day: 'Theo ngày', r_by_hour: 'Theo giờ trong ngày', r_by_channel: 'Theo kênh', r_by_agent: 'Theo nhân viên',
  r_satisfaction: 'Mức độ hài lòng', r_campaigns: 'Chiến dịch', r_opened: 'Mở mới', r_resolved: 'Đã xong',
  r_first_response: 'Phản hồi đầu (trung vị)', r_resolution: 'Thời gian xử lý (trung vị)', r_p90: 'P90',
  r_business_hours: 'giờ làm việc', r_wall_time: 'giờ thực', r_messages: 'Tin nhắn', r_in_out: 'đến / đi',
  r_waiting: 'Đang chờ phân công', r_sla_breaches: 'Vi phạm SLA', r_csat: 'Hài lòng (1-5)',
  r_answers: '{n} trả lời, {p} hài lòng', r_answers_label: 'Số trả lời', r_day: 'Ngày', r_hour: 'Giờ',
  r_messages_in: 'Tin đến', r_messages_out: 'Tin đi', r_open_now: 'Đang mở', r_score: 'Điểm',
  r_audience: 'Đối tượng', r_opted_out: 'Từ chối nhận', r_replied: 'Phản hồi', r_no_campaigns: 'Không có chiến dịch nào trong khoảng này',
  r_days_hours: '{d} ngày {h} giờ', r_hours_minutes: '{h} giờ {m} phút', r_minutes_seconds: '{m} phút {s} giây',
});
Object.assign(WORDS.en, {
  reports: 'Reports', r_period: 'Period', r_last_7d: 'Last 7 days', r_last_30d: 'Last 30 days',
  r_last_90d: 'Last 90 days', r_custom: 'Custom', r_since: 'From', r_until: 'To', r_any: '— Any —',
  r_channel: 'Channel', r_label: 'Label', r_apply: 'Show', r_download_csv: 'Download CSV', r_summary: 'Summary',
  r_by_day: 'By day', r_by_hour: 'By hour of day', r_by_channel: 'By channel', r_by_agent: 'By agent',
  r_satisfaction: 'Satisfaction', r_campaigns: 'Campaigns', r_opened: 'Opened', r_resolved: 'Resolved',
  r_first_response: 'First response (median)', r_resolution: 'Resolution time (median)', r_p90: 'P90',
  r_business_hours: 'business hours', r_wall_time: 'wall time', r_messages: 'Messages', r_in_out: 'in / out',
  r_waiting: 'Waiting unassigned', r_sla_breaches: 'SLA breaches', r_csat: 'Satisfaction (1-5)',
  r_answers: '{n} answers, {p} satisfied', r_answers_label: 'Answers', r_day: 'Day', r_hour: 'Hour',
  r_messages_in: 'Messages in', r_messages_out: 'Messages out', r_open_now: 'Open now', r_score: 'Score',
  r_audience: 'Audience', r_opted_out: 'Opted out', r_replied: 'Replied', r_no_campaigns: 'No campaign ran in this period',
  r_days_hours: '{d}d {h}h', r_hours_minutes: '{h}h {m}m', r_minutes_seconds: '{m}m {s}s',
});

let language = localStorage.getItem('hub.lang')
  || ((navigator.language || 'vi').toLowerCase().startsWith('en') ? 'en' : 'vi');

export function lang() { return language; }

export function setLang(value) {
  language = WORDS[value] ? value : 'vi';
  localStorage.setItem('hub.lang', language);
  translate(document);
}

export function t(key, values = {}) {
  const text = WORDS[language][key] ?? WORDS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ''));
}

export function translate(root) {
  document.documentElement.lang = language;
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const select of root.querySelectorAll('select.lang')) select.value = language;
}
