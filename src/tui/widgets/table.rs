//! A virtual table: it holds only a window of rows around the selection and asks for more
//! with keyset pages (`Page::after/before/first/last`), so a table of a million rows opens
//! and scrolls as fast as one of ten. The state is pure: `plan()` says which page to fetch,
//! the screen fetches it and hands it to `apply()`. Counts come from `count_*`.

use crate::db::{DbResult, Page};

/// A row that has a keyset id.
pub trait Keyed {
    fn key(&self) -> i32;
}

impl Keyed for crate::db::User {
    fn key(&self) -> i32 {
        self.id
    }
}

impl Keyed for crate::db::Tenant {
    fn key(&self) -> i32 {
        self.id
    }
}

/// A fetch the table needs before it can show the selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    /// Replace the window with the first rows.
    First(Page),
    /// Replace the window with the last rows.
    Last(Page),
    /// Append rows after the window.
    After(Page),
    /// Prepend rows before the window.
    Before(Page),
}

impl Fetch {
    pub fn page(&self) -> Page {
        match *self {
            Fetch::First(p) | Fetch::Last(p) | Fetch::After(p) | Fetch::Before(p) => p,
        }
    }
}

#[derive(Debug, Clone)]
pub struct VirtualTable<T> {
    /// Rows matching the filter (from `count_*`).
    pub total: usize,
    /// Absolute index of `rows[0]`.
    pub start: usize,
    pub rows: Vec<T>,
    /// Absolute index of the selected row.
    pub selected: usize,
    /// Absolute index of the first visible row.
    pub offset: usize,
    /// Visible rows (set from the layout).
    pub height: usize,
    /// The filter text given to the store.
    pub filter: String,
    /// `total` is provisional: an exact count is being made elsewhere (the log viewer
    /// counts a million rows in the background and scrolls meanwhile).
    pub counting: bool,
    /// Set when the window must be refetched from scratch (filter changed, data changed).
    stale: bool,
    jump_end: bool,
    /// The count is out of date (first load, filter or data changed).
    count_stale: bool,
}

impl<T> Default for VirtualTable<T> {
    fn default() -> Self {
        VirtualTable {
            total: 0,
            start: 0,
            rows: Vec::new(),
            selected: 0,
            offset: 0,
            height: 10,
            filter: String::new(),
            counting: false,
            stale: true,
            jump_end: false,
            count_stale: true,
        }
    }
}

impl<T: Keyed + Clone> VirtualTable<T> {
    /// Rows kept on either side of the visible part.
    fn margin(&self) -> usize {
        self.height.max(1)
    }

    fn cap(&self) -> usize {
        self.height.max(1) * 3
    }

    pub fn search(&self) -> Option<&str> {
        let f = self.filter.trim();
        if f.is_empty() { None } else { Some(f) }
    }

    /// Forget the rows; the next `plan` starts again at the selection's neighbourhood (top).
    pub fn invalidate(&mut self) {
        self.stale = true;
        self.count_stale = true;
    }

    /// Count again on the next load (the screen was reopened; others may have written).
    pub fn recount(&mut self) {
        self.count_stale = true;
    }

    /// True when `set_total` must be called before `plan` (moving does not need a count).
    pub fn needs_count(&self) -> bool {
        self.count_stale
    }

    /// Reset to the first row (new filter).
    pub fn reset(&mut self) {
        self.selected = 0;
        self.offset = 0;
        self.stale = true;
        self.count_stale = true;
        self.jump_end = false;
    }

    pub fn set_total(&mut self, total: usize) {
        self.count_stale = false;
        self.total = total;
        if self.selected >= total {
            self.selected = total.saturating_sub(1);
        }
    }

    pub fn set_height(&mut self, height: usize) {
        self.height = height.max(1);
        self.scroll_to_selection();
    }

    pub fn selected_row(&self) -> Option<&T> {
        self.selected
            .checked_sub(self.start)
            .and_then(|i| self.rows.get(i))
    }

    /// The rows on screen with their absolute indexes.
    pub fn visible(&self) -> impl Iterator<Item = (usize, &T)> {
        let from = self.offset.max(self.start);
        let to = (self.offset + self.height).min(self.start + self.rows.len());
        (from..to).filter_map(move |i| self.rows.get(i - self.start).map(|r| (i, r)))
    }

    fn scroll_to_selection(&mut self) {
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + self.height {
            self.offset = self.selected + 1 - self.height;
        }
        let max_offset = self.total.saturating_sub(self.height);
        self.offset = self.offset.min(max_offset);
    }

    pub fn move_by(&mut self, delta: isize) {
        if self.total == 0 {
            return;
        }
        let last = self.total - 1;
        self.selected = (self.selected as isize + delta).clamp(0, last as isize) as usize;
        self.scroll_to_selection();
    }

    pub fn home(&mut self) {
        self.selected = 0;
        self.offset = 0;
        if self.start != 0 {
            self.stale = true;
        }
    }

    pub fn end(&mut self) {
        if self.total == 0 {
            return;
        }
        self.selected = self.total - 1;
        self.scroll_to_selection();
        if self.start + self.rows.len() < self.total {
            self.stale = true;
            self.jump_end = true;
        }
    }

    pub fn page(&self) -> isize {
        self.height.max(1) as isize
    }

    /// Brings the window in line with the selection: the total when the filter or the data
    /// changed, then every page `plan` asks for. Both queries get the current search, so
    /// each screen only says which store calls serve it.
    pub async fn sync(
        &mut self,
        count: impl AsyncFnOnce(Option<String>) -> DbResult<i64>,
        mut fetch: impl AsyncFnMut(Page, Option<String>) -> DbResult<Vec<T>>,
    ) -> DbResult<()> {
        if self.needs_count() {
            let total = count(self.search().map(str::to_string)).await?;
            self.set_total(total.max(0) as usize);
        }
        while let Some(plan) = self.plan() {
            let rows = fetch(plan.page(), self.search().map(str::to_string)).await?;
            self.apply(plan, rows);
        }
        Ok(())
    }

    /// The next page needed to show rows `offset..offset+height`, if any.
    pub fn plan(&self) -> Option<Fetch> {
        let cap = self.cap() as i64;
        if self.stale {
            return Some(if self.jump_end {
                Fetch::Last(Page::last(cap))
            } else {
                Fetch::First(Page::first(cap))
            });
        }
        if self.total == 0 {
            return None;
        }
        let want_from = self.offset;
        let want_to = (self.offset + self.height).min(self.total);
        let have_to = self.start + self.rows.len();
        if want_to > have_to {
            let last = self.rows.last()?;
            let need = (want_to - have_to + self.margin()) as i64;
            return Some(Fetch::After(Page::after(last.key(), need)));
        }
        if want_from < self.start {
            let first = self.rows.first()?;
            let need = (self.start - want_from + self.margin()) as i64;
            return Some(Fetch::Before(Page::before(first.key(), need)));
        }
        None
    }

    /// Takes the rows of a `plan()`ned fetch.
    pub fn apply(&mut self, fetch: Fetch, rows: Vec<T>) {
        let cap = self.cap();
        match fetch {
            Fetch::First(_) => {
                self.start = 0;
                self.rows = rows;
                self.stale = false;
                // After a refetch the selection may lie past the first window (reload
                // deep in a table): walk there with After pages.
            }
            Fetch::Last(_) => {
                self.start = self.total.saturating_sub(rows.len());
                self.rows = rows;
                self.stale = false;
                self.jump_end = false;
            }
            Fetch::After(_) => {
                let got = rows.len();
                self.rows.extend(rows);
                if got == 0 {
                    // The table shrank under us: believe what is there.
                    self.total = self.start + self.rows.len();
                    self.selected = self.selected.min(self.total.saturating_sub(1));
                    self.scroll_to_selection();
                }
                if self.rows.len() > cap {
                    let keep_from = self.offset.saturating_sub(self.margin()).max(self.start);
                    let drop = (keep_from - self.start).min(self.rows.len());
                    self.rows.drain(..drop);
                    self.start += drop;
                }
            }
            Fetch::Before(_) => {
                let got = rows.len();
                if got == 0 {
                    self.start = 0;
                } else {
                    self.start = self.start.saturating_sub(got);
                    let mut rows = rows;
                    rows.append(&mut self.rows);
                    self.rows = rows;
                }
                if self.rows.len() > cap {
                    let keep_to =
                        (self.offset + self.height + self.margin()).max(self.start) - self.start;
                    self.rows.truncate(keep_to.max(1));
                }
            }
        }
        if self.selected >= self.total {
            self.selected = self.total.saturating_sub(1);
        }
    }
}

/// Draws a loaded window: `cells` gives each visible row's texts.
pub struct TableView<'a> {
    pub title: &'a str,
    pub headers: &'a [&'a str],
    pub widths: &'a [ratatui::layout::Constraint],
}

impl TableView<'_> {
    pub fn draw<T: Keyed + Clone>(
        &self,
        frame: &mut ratatui::Frame,
        area: ratatui::layout::Rect,
        theme: &crate::tui::theme::Theme,
        table: &VirtualTable<T>,
        cells: impl Fn(&T) -> Vec<String>,
    ) {
        use ratatui::text::Span;
        use ratatui::widgets::{Block, Row, Table, TableState};
        let rows: Vec<Row> = table.visible().map(|(_, r)| Row::new(cells(r))).collect();
        let position = if table.counting {
            format!("{} of … (counting)", table.selected + 1)
        } else if table.total == 0 {
            "0 rows".to_string()
        } else {
            format!("{} of {}", table.selected + 1, table.total)
        };
        let mut title = format!(" {} ", self.title);
        if let Some(f) = table.search() {
            title.push_str(&format!("/{f} "));
        }
        let block = Block::bordered()
            .title(Span::styled(title, theme.accent()))
            .title_top(ratatui::text::Line::from(format!(" {position} ")).right_aligned())
            .style(theme.base());
        let header = Row::new(
            self.headers
                .iter()
                .map(|h| Span::styled(*h, theme.accent())),
        );
        let widget = Table::new(rows, self.widths.to_vec())
            .header(header)
            .block(block)
            .column_spacing(1)
            .row_highlight_style(theme.selected());
        let mut state = TableState::default();
        if table.total > 0 {
            state.select(Some(table.selected.saturating_sub(table.offset)));
        }
        frame.render_stateful_widget(widget, area, &mut state);
    }
}

/// Rows of the table body inside `area` (borders and header take three).
pub fn body_rows(area: ratatui::layout::Rect) -> usize {
    area.height.saturating_sub(3).max(1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct R(i32);
    impl Keyed for R {
        fn key(&self) -> i32 {
            self.0
        }
    }

    /// Rows with ids 1..=n; serves a page like the store would.
    fn serve(n: i32, f: Fetch) -> Vec<R> {
        let p = f.page();
        let lim = p.limit as i32;
        match f {
            Fetch::First(_) => (1..=n).take(lim as usize).map(R).collect(),
            Fetch::Last(_) => ((n - lim + 1).max(1)..=n).map(R).collect(),
            Fetch::After(_) => {
                let c = p.cursor.unwrap_or(0);
                ((c + 1)..=n).take(lim as usize).map(R).collect()
            }
            Fetch::Before(_) => {
                let c = p.cursor.unwrap_or(n + 1);
                ((c - lim).max(1)..c).map(R).collect()
            }
        }
    }

    fn settle(t: &mut VirtualTable<R>, n: i32) -> usize {
        let mut fetches = 0;
        while let Some(f) = t.plan() {
            let rows = serve(n, f);
            t.apply(f, rows);
            fetches += 1;
            assert!(fetches < 10, "fetch loop");
        }
        fetches
    }

    fn check(t: &VirtualTable<R>) {
        let sel = t.selected_row().expect("selected row loaded");
        assert_eq!(sel.0 as usize, t.selected + 1);
        for (i, r) in t.visible() {
            assert_eq!(r.0 as usize, i + 1);
        }
        assert!(
            t.rows.len() <= t.height * 3 + t.height * 2,
            "window stays small: {}",
            t.rows.len()
        );
    }

    #[test]
    fn scrolls_a_large_table_with_small_windows() {
        let n = 100_000;
        let mut t = VirtualTable::<R>::default();
        t.set_height(20);
        t.set_total(n as usize);
        settle(&mut t, n);
        check(&t);
        for _ in 0..50 {
            t.move_by(1);
            settle(&mut t, n);
            check(&t);
        }
        for _ in 0..30 {
            t.move_by(t.page());
            settle(&mut t, n);
            check(&t);
        }
        t.end();
        settle(&mut t, n);
        check(&t);
        assert_eq!(t.selected_row().unwrap().0, n);
        for _ in 0..7 {
            t.move_by(-t.page());
            settle(&mut t, n);
            check(&t);
        }
        for _ in 0..25 {
            t.move_by(-1);
            settle(&mut t, n);
            check(&t);
        }
        t.home();
        settle(&mut t, n);
        check(&t);
        assert_eq!(t.selected_row().unwrap().0, 1);
    }

    #[test]
    fn empty_table_is_fine() {
        let mut t = VirtualTable::<R>::default();
        t.set_total(0);
        settle(&mut t, 0);
        t.move_by(1);
        t.end();
        assert!(t.selected_row().is_none());
        assert_eq!(t.plan(), None);
    }
}
