// The workspace's words in Vietnamese (first) and English. Static elements name
// their key in data-i18n / data-i18n-placeholder; code calls t(key, values).
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
