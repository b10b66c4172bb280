//! The pages' words in English and French. Every string is a field of [`Strings`], so a missing
//! translation is a compile error; `{n}`-style holes are filled by [`fill`].

/// The pages' language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// French.
    Fr,
}

impl Lang {
    /// `en` or `fr` (the `lang` attribute and the cookie value).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// `en` or `fr`, anything else `None`.
    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "fr" => Some(Lang::Fr),
            _ => None,
        }
    }

    /// The first of English or French in an `Accept-Language` header (by quality, then order);
    /// English when neither is there.
    pub fn from_accept_language(header: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',') {
            let mut fields = part.split(';');
            let tag = fields.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = fields
                .find_map(|f| f.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()))
                .unwrap_or(1.0);
            let lang = match tag.split('-').next() {
                Some("fr") => Lang::Fr,
                Some("en") => Lang::En,
                _ => continue,
            };
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }

    /// The other language (the switch link).
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Fr,
            Lang::Fr => Lang::En,
        }
    }

    /// The words of this language.
    pub fn t(self) -> &'static Strings {
        match self {
            Lang::En => &EN,
            Lang::Fr => &FR,
        }
    }

    /// `label: ` with the language's spacing ("Score: " / "Score : ").
    pub fn colon(self, label: &str) -> String {
        match self {
            Lang::En => format!("{label}: "),
            Lang::Fr => format!("{label}\u{a0}: "),
        }
    }

    /// A share as a percentage ("34%" / "34 %").
    pub fn percent(self, share: f64) -> String {
        match self {
            Lang::En => format!("{:.0}%", 100.0 * share),
            Lang::Fr => format!("{:.0}\u{202f}%", 100.0 * share),
        }
    }

    /// The words of the campaign chart.
    pub fn chart_words(self) -> etalon_assessment::chart::CampaignChartWords<'static> {
        let t = self.t();
        etalon_assessment::chart::CampaignChartWords {
            levels_of: t.chart_levels_of,
            participants: t.chart_participants,
            level: t.chart_level,
            legend: t.chart_legend,
        }
    }

    /// A level probability in words ("very likely").
    pub fn certainty(self, c: etalon_assessment::certainty::Certainty) -> &'static str {
        match self {
            Lang::En => c.english(),
            Lang::Fr => c.french(),
        }
    }
}

/// `text` with each `{name}` replaced by its value.
pub fn fill(text: &str, holes: &[(&str, &dyn std::fmt::Display)]) -> String {
    let mut out = text.to_string();
    for (name, value) in holes {
        out = out.replace(&format!("{{{name}}}"), &value.to_string());
    }
    out
}

macro_rules! strings {
    ($($key:ident: $en:expr, $fr:expr;)*) => {
        /// Every string of the pages.
        #[allow(missing_docs)]
        pub struct Strings { $(pub $key: &'static str,)* }
        /// English.
        pub const EN: Strings = Strings { $($key: $en,)* };
        /// French.
        pub const FR: Strings = Strings { $($key: $fr,)* };
    };
}

strings! {
    language_name: "English", "Français";
    switch_to: "Lire en français", "Read in English";
    skip: "Skip to content", "Aller au contenu";
    main_nav: "Main", "Principal";
    home: "Take an assessment", "Passer une évaluation";
    org_space: "Organisation space", "Espace organisation";
    tagline: "An adaptive assessment of your competences: each question depends on your previous answers, so a few questions are enough.",
        "Une évaluation adaptative de vos compétences : chaque question dépend de vos réponses précédentes, si bien que quelques questions suffisent.";
    join_title: "Join an assessment", "Rejoindre une évaluation";
    code: "Campaign code", "Code de la campagne";
    code_hint: "Given by your organisation, for example DEMO.", "Donné par votre organisation, par exemple DEMO.";
    identifier: "Your identifier (optional)", "Votre identifiant (facultatif)";
    identifier_hint: "An employee number or e-mail address, if your organisation asked for one.",
        "Un matricule ou une adresse électronique, si votre organisation en demande un.";
    start: "Start", "Commencer";
    resume_title: "You have an assessment in progress", "Vous avez une évaluation en cours";
    resume: "Continue where I stopped", "Reprendre où je m'étais arrêté";
    question_of: "Question {k} of at most {n}", "Question {k} sur {n} au plus";
    progress: "Progress", "Progression";
    competence: "Competence", "Compétence";
    your_answer: "Your answer", "Votre réponse";
    answer: "Answer", "Répondre";
    choose_one: "Choose an answer before going on.", "Choisissez une réponse avant de continuer.";
    right: "Right answer.", "Bonne réponse.";
    wrong: "Not quite.", "Pas tout à fait.";
    recorded: "Answer recorded.", "Réponse enregistrée.";
    to_learn: "To learn more:", "Pour en savoir plus :";
    next_question: "Next question", "Question suivante";
    see_profile: "See my profile", "Voir mon profil";
    finished_title: "Your profile", "Votre profil";
    finished_lead: "The assessment is over. Here is your level in each competence, and how sure it is.",
        "L'évaluation est terminée. Voici votre niveau dans chaque compétence, et avec quelle certitude.";
    score: "Score", "Score";
    points: "points", "points";
    level: "Level", "Niveau";
    certainty: "How sure", "Certitude";
    target: "Target", "Objectif";
    profile_chart: "Your level in each competence", "Votre niveau dans chaque compétence";
    profile_legend: "Bar: your level. Black mark: the level your organisation aims for.",
        "Barre : votre niveau. Trait noir : le niveau visé par votre organisation.";
    missed_title: "To review: the questions you missed", "À revoir : les questions manquées";
    next_steps_title: "Next steps", "Pour progresser";
    nothing_missed: "You missed no question that has a tutorial.", "Vous n'avez manqué aucune question accompagnée d'un tutoriel.";
    new_assessment: "Take another assessment", "Passer une autre évaluation";
    no_session: "No assessment in progress in this browser. Join one with its code.",
        "Aucune évaluation en cours dans ce navigateur. Rejoignez-en une avec son code.";
    already_answered: "That question was already answered; here is where you are.",
        "Cette question avait déjà reçu une réponse ; voici où vous en êtes.";
    error_title: "Something went wrong", "Une erreur est survenue";
    back_home: "Back to the start page", "Retour à l'accueil";
    unavailable: "The service is busy or unavailable. Your answers are safe; try again in a moment.",
        "Le service est occupé ou indisponible. Vos réponses sont en sécurité ; réessayez dans un instant.";
    // Organisation pages.
    sign_in_title: "Sign in", "Connexion";
    key: "Organisation key", "Clé de l'organisation";
    key_hint: "It starts with etk_ and was printed when the organisation was created.",
        "Elle commence par etk_ et a été affichée à la création de l'organisation.";
    sign_in: "Sign in", "Se connecter";
    sign_out: "Sign out", "Se déconnecter";
    signed_in_as: "Signed in as {org}", "Connecté en tant que {org}";
    campaigns: "Campaigns", "Campagnes";
    banks: "Item banks", "Banques d'items";
    name: "Name", "Nom";
    join_code: "Join code", "Code d'accès";
    state: "State", "État";
    open: "open", "ouverte";
    closed: "closed", "fermée";
    started: "Started", "Commencées";
    finished: "Finished", "Terminées";
    no_campaigns: "No campaign yet.", "Aucune campagne pour l'instant.";
    new_campaign: "New campaign", "Nouvelle campagne";
    bank: "Bank", "Banque";
    version: "Version", "Version";
    items: "Items", "Items";
    upload_title: "Upload a bank", "Déposer une banque";
    upload_file: "Bank file (JSON, or CSV)", "Fichier de la banque (JSON ou CSV)";
    upload_hint: "The formats of docs/FORMATS.md. A CSV bank takes its id from the file name.",
        "Les formats de docs/FORMATS.md. Une banque CSV prend pour identifiant le nom du fichier.";
    upload: "Upload", "Déposer";
    upload_failed: "The bank was not stored: {n} problem(s). Each is shown next to its line.",
        "La banque n'a pas été enregistrée : {n} problème(s), chacun à côté de sa ligne.";
    unplaced: "Problems not tied to a line", "Problèmes sans ligne précise";
    line: "Line", "Ligne";
    problem: "Problem", "Problème";
    bank_stored: "Bank stored.", "Banque enregistrée.";
    item: "Item", "Item";
    model: "Model", "Modèle";
    parameters: "Parameters", "Paramètres";
    text: "Text", "Énoncé";
    choices: "Choices", "Choix";
    correct_choice: "(key)", "(bonne réponse)";
    tutorials: "Tutorials", "Tutoriels";
    icc: "Characteristic curves", "Courbes caractéristiques";
    information: "Information", "Information";
    ability: "Ability θ", "Aptitude θ";
    probability: "Probability", "Probabilité";
    category: "Category {k}", "Catégorie {k}";
    correct_answer: "Correct answer", "Bonne réponse";
    create_campaign: "Create the campaign", "Créer la campagne";
    choose_bank: "Choose", "Choisir";
    targets: "Target level per competence", "Niveau visé par compétence";
    feedback_option: "Immediate feedback: after each answer, say whether it was right and show the tutorial",
        "Retour immédiat : après chaque réponse, dire si elle est juste et montrer le tutoriel";
    design: "Test", "Test";
    design_auto: "Recommended for this bank", "Recommandé pour cette banque";
    design_profile: "One short test per competence", "Un court test par compétence";
    design_multidimensional: "Multidimensional profile (answers inform related competences)",
        "Profil multidimensionnel (chaque réponse renseigne les compétences liées)";
    design_general: "One overall level, read per competence (PIX-style)", "Un niveau global, lu par compétence (à la manière de PIX)";
    code_optional: "Join code (optional, 4 to 32 letters or digits)", "Code d'accès (facultatif, 4 à 32 lettres ou chiffres)";
    join_link: "Join link", "Lien d'accès";
    close_campaign: "Close the campaign", "Fermer la campagne";
    open_campaign: "Open the campaign", "Ouvrir la campagne";
    participation: "Participation", "Participation";
    distribution: "Level distribution", "Répartition des niveaux";
    no_results: "No finished participant yet. This view refreshes by itself.",
        "Aucun participant n'a encore terminé. Cette vue se met à jour toute seule.";
    training_needs: "Training needs, greatest first", "Besoins de formation, du plus grand au plus petit";
    below_target: "Below target", "Sous l'objectif";
    mean_level: "Mean θ", "θ moyen";
    recommend: "Tutorials to recommend", "Tutoriels à recommander";
    export_csv: "Download the results (CSV)", "Télécharger les résultats (CSV)";
    refreshed: "Updated automatically every few seconds.", "Mis à jour automatiquement toutes les quelques secondes.";
    not_found: "Not found.", "Introuvable.";
    reached: "reached", "atteint";
    lti_title: "LMS (LTI 1.3)", "LMS (LTI 1.3)";
    lti_lead: "To add Etalon to Moodle or another LTI 1.3 platform as an external tool, give it these addresses, then register the platform with POST /v1/lti/platforms (see the README).",
        "Pour ajouter Etalon à Moodle ou à une autre plateforme LTI 1.3 comme outil externe, donnez-lui ces adresses, puis enregistrez la plateforme avec POST /v1/lti/platforms (voir le README).";
    lti_tool_url: "Tool URL and redirection URI", "URL de l'outil et URI de redirection";
    lti_login_url: "Initiate login URL", "URL d'initiation de connexion";
    lti_jwks_url: "Public keyset URL", "URL du jeu de clés publiques";
    lti_platforms: "Registered platforms", "Plateformes enregistrées";
    lti_none: "No platform registered yet.", "Aucune plateforme enregistrée.";
    issuer: "Issuer", "Émetteur";
    client_id: "Client id", "Identifiant client";
    deployments: "Deployments", "Déploiements";
    grades_title: "Grades sent to the LMS", "Notes envoyées au LMS";
    grades_posted: "posted", "envoyées";
    grades_pending: "waiting", "en attente";
    last_error: "Last error", "Dernière erreur";
    xapi_title: "Learning Record Store (xAPI)", "Learning Record Store (xAPI)";
    xapi_none: "No LRS configured: answers and results go to one once an LRS is set with PUT /v1/xapi.",
        "Aucun LRS configuré : les réponses et résultats y partiront une fois un LRS défini par PUT /v1/xapi.";
    xapi_endpoint: "Endpoint", "Adresse";
    xapi_sessions: "sessions sent in full", "sessions envoyées en entier";
    xapi_open: "in progress", "en cours";
    xapi_answers: "answers sent", "réponses envoyées";
    dl_title: "Add an Etalon assessment to the course", "Ajouter une évaluation Etalon au cours";
    dl_choose: "The campaign to add", "La campagne à ajouter";
    dl_add: "Add to the course", "Ajouter au cours";
    dl_back: "Going back to the course…", "Retour au cours…";
    dl_return: "Return to the course", "Revenir au cours";
    not_yet: "not yet", "pas encore";
    chart_levels_of: "levels of", "niveaux de";
    chart_participants: "participants", "participants";
    chart_level: "level", "niveau";
    chart_legend: "Black mark: share below the target level. Greatest training need:",
        "Trait noir : part sous le niveau visé. Plus grand besoin de formation :";
    answered_of: "Question {k} answered, of at most {n}", "Question {k} répondue, sur {n} au plus";
    bad_form: "This form has expired; please try again.", "Ce formulaire a expiré ; recommencez.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_of_french_and_english() {
        assert_eq!(Lang::from_accept_language("fr-FR,fr;q=0.9,en;q=0.8"), Lang::Fr);
        assert_eq!(Lang::from_accept_language("de-DE,en;q=0.5,fr;q=0.7"), Lang::Fr);
        assert_eq!(Lang::from_accept_language("en-GB,fr;q=0.9"), Lang::En);
        assert_eq!(Lang::from_accept_language("de, it"), Lang::En);
        assert_eq!(Lang::from_accept_language(""), Lang::En);
        assert_eq!(fill("{k} of {n}", &[("k", &3), ("n", &"9")]), "3 of 9");
    }
}
